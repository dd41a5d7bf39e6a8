import { type App, Aspects, CfnResource, type IAspect, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, type NagRuleResult, rules } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * Runs cdk-nag's AWS Solutions rules on every synth. An unacknowledged finding stops synthesis;
 * each acknowledgment sits next to the resource it concerns, with its reason.
 */
export function addComplianceChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
}

const granularRules = {
  'AwsSolutions-IAM4': rules.iam.IAMNoManagedPolicies,
  'AwsSolutions-IAM5': rules.iam.IAMNoWildcardPermissions,
} satisfies Record<string, (node: CfnResource) => NagRuleResult>;

/**
 * Acknowledges every finding of a granular IAM rule on the resources under `scope`, for code we
 * do not write (e.g. aws-cdk-lib's own custom-resource handlers), whose findings name asset
 * buckets and generated ids. cdk-nag only accepts exact finding ids (`AwsSolutions-IAM5[Action::s3:List*]`),
 * so the ids are computed with cdk-nag's own rule, just before it runs. Never use it on a role
 * of ours: there, each wildcard is acknowledged by its own id.
 */
export function acknowledgeThirdPartyFindings(
  scope: IConstruct,
  ruleId: keyof typeof granularRules,
  reason: string,
): void {
  const rule = granularRules[ruleId];
  const aspect: IAspect = {
    visit(node) {
      if (!(node instanceof CfnResource)) return;
      const findings = rule(node);
      if (!Array.isArray(findings)) return;
      for (const finding of findings)
        Validations.of(node).acknowledge({ id: `${ruleId}[${finding}]`, reason });
    },
  };
  Aspects.of(scope).add(aspect);
}
