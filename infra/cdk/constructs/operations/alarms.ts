import * as cw from 'aws-cdk-lib/aws-cloudwatch';

/**
 * The alarms are defined with the dashboard in contracts/dashboard-alarms.ts (the local ops page
 * shows them as states); the construct renders them. Re-exported here for the infra tests.
 */
export {
  type AlarmDef,
  MAX_BILLING_EXPORT_LAG_SECONDS,
  mapAlarms,
  type OperationsAlarms,
} from '../../../../contracts/dashboard';

/** The definition's comparison as CDK's enum (the same strings CloudFormation takes). */
export function comparisonOperatorOf(operator: string): cw.ComparisonOperator {
  const known = Object.values(cw.ComparisonOperator) as string[];
  if (!known.includes(operator)) throw new Error(`unknown comparison operator ${operator}`);
  return operator as cw.ComparisonOperator;
}
