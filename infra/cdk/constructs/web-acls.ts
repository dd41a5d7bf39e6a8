import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct, type IDependable } from 'constructs';

/**
 * Requests one source IP address may send to a front door in {@link RATE_WINDOW_SECONDS} before
 * WAF blocks it (until its rate falls below the limit again).
 */
export interface RateLimits {
  /**
   * The key API (ALB: key-api and the owner API). Its clients are programs, often many behind one
   * NAT address, so the limit is generous: about 100 requests per second sustained. It caps one
   * address's flood of forged keys before it reaches Lambda; per-key limits are the plans'.
   */
  readonly keyApi: number;
  /** The user API (API Gateway): one person's page makes a few calls per action (~3 per second). */
  readonly userApi: number;
  /** The user pool (sign-up, sign-in, token refresh): a few calls per sign-in; caps password guessing. */
  readonly userPool: number;
}

/** WAF's rate window (60, 120, 300 or 600 s); the limits of {@link RateLimits} are per this window. */
export const RATE_WINDOW_SECONDS = 300;

export const DEFAULT_RATE_LIMITS: RateLimits = { keyApi: 30_000, userApi: 1_000, userPool: 300 };

/** The AWS managed rule groups every web ACL runs (no subscription fee, 700 + 200 WCU). */
export const MANAGED_RULE_GROUPS = [
  'AWSManagedRulesCommonRuleSet',
  'AWSManagedRulesKnownBadInputsRuleSet',
] as const;

export interface RegionalWebAclProps {
  /** The ACL's name and metric prefix, e.g. `tollgate-prod-key-api`. */
  readonly name: string;
  readonly description: string;
  /** Requests per source IP per {@link RATE_WINDOW_SECONDS} past which the address is blocked. */
  readonly rateLimit: number;
  /**
   * Rules of the common rule set that only count instead of blocking, for a front door whose
   * legitimate traffic they would block.
   * @default - none: every rule blocks
   */
  readonly countOnlyCommonRules?: readonly string[];
}

/**
 * A REGIONAL WAF web ACL: a per-IP rate-based rule first (a flood is dropped before the managed
 * rules are even evaluated), then the AWS common and known-bad-inputs rule groups; everything else
 * is allowed. Associated with an ALB, an API Gateway REST API stage or a Cognito user pool.
 */
export class RegionalWebAcl extends Construct {
  readonly webAcl: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: RegionalWebAclProps) {
    super(scope, id);
    const visibility = (metric: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      metricName: `${props.name}-${metric}`,
      sampledRequestsEnabled: true,
    });
    const countOnly = props.countOnlyCommonRules ?? [];

    this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
      name: props.name,
      description: props.description,
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('all'),
      rules: [
        {
          name: 'RateLimitPerIp',
          priority: 0,
          action: { block: {} },
          statement: {
            rateBasedStatement: {
              limit: props.rateLimit,
              // The client's own address: nothing (no CloudFront, no proxy) sits in front of these
              // three, so the connection's source IP is the caller's, and no header can forge it.
              aggregateKeyType: 'IP',
              evaluationWindowSec: RATE_WINDOW_SECONDS,
            },
          },
          visibilityConfig: visibility('rate-limit'),
        },
        ...MANAGED_RULE_GROUPS.map(
          (group, index): wafv2.CfnWebACL.RuleProperty => ({
            name: group,
            priority: index + 1,
            overrideAction: { none: {} },
            statement: {
              managedRuleGroupStatement: {
                vendorName: 'AWS',
                name: group,
                ...(group === 'AWSManagedRulesCommonRuleSet' && countOnly.length > 0
                  ? { ruleActionOverrides: countOnly.map((name) => ({ name, actionToUse: { count: {} } })) }
                  : {}),
              },
            },
            visibilityConfig: visibility(group),
          }),
        ),
      ],
    });
  }

  /**
   * Puts the ACL in front of a resource. `dependency`: what must exist first when the ARN alone does
   * not say so (an API Gateway stage ARN is built from the API's id and the stage's name).
   */
  associate(id: string, resourceArn: string, dependency?: IDependable): wafv2.CfnWebACLAssociation {
    const association = new wafv2.CfnWebACLAssociation(this, id, {
      resourceArn,
      webAclArn: this.webAcl.attrArn,
    });
    if (dependency) association.node.addDependency(dependency);
    return association;
  }
}
