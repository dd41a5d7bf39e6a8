/**
 * The CDK app (`cdk.json` → `npx tsx infra/cdk/app.ts`). Settings come from context, e.g.
 * `npm run deploy -- -c stage=prod -c transport=kinesis -c certificateArn=arn:aws:acm:...`;
 * docs/deploy.md lists them all.
 */
import { Annotations, App } from 'aws-cdk-lib';
import { addComplianceChecks } from './compliance';
import {
  builtWebAssets,
  DeploymentConfigError,
  type DeploymentContext,
  FALLBACK_REGION,
  readDeploymentContext,
  stackPropsFromContext,
} from './config';
import { TollgateStack } from './tollgate-stack';

const app = new App();
const context = readContextOrExit(app);
const stack = new TollgateStack(
  app,
  `Tollgate-${context.stage}`,
  stackPropsFromContext(context, builtWebAssets()),
);
if (context.region === undefined) {
  Annotations.of(stack).addWarningV2(
    'tollgate:region',
    `No region given (-c region=..., AWS_REGION or a profile's region): synthesized for ${FALLBACK_REGION}.`,
  );
}
addComplianceChecks(app);
app.synth();

/** A bad setting stops synthesis with its one-line message, not a stack trace. */
function readContextOrExit(app: App): DeploymentContext {
  try {
    return readDeploymentContext(app.node);
  } catch (error) {
    if (!(error instanceof DeploymentConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
