import { App } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ACCEPTANCE_WINDOW, ENV } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { queueName, usageQueue } from '../../contracts/resources';
import { type WebConfig, webContentSecurityPolicy } from '../../contracts/web-config';
import { DeploymentConfigError, readDeploymentContext } from '../../infra/cdk/config';
import { PUBLISH_ACTIONS } from '../../infra/cdk/constructs/usage-transport';
import { MINTING_ROUTES } from '../../infra/cdk/constructs/user-api-gateway';
import {
  DEFAULT_RATE_LIMITS,
  MANAGED_RULE_GROUPS,
  RATE_WINDOW_SECONDS,
} from '../../infra/cdk/constructs/web-acls';
import { DEFAULT_KEY_API_RESERVED_CONCURRENCY } from '../../infra/cdk/stack-props';
import { createLocalSiteApp } from '../../web/server/local-site';
import { recordFigures } from '../support/figures';
import { logicalIdOf, permissionsOf, resourcesOf, type Synthesized, synthesize } from './synth';

// biome-ignore lint/suspicious/noExplicitAny: the template is untyped JSON; assertions check its shape.
type CfnProperties = any;

const CERTIFICATE = 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555';
const REGION = 'eu-west-1';
/** Lambda's default concurrency per account and region, and the part it keeps unreserved at least. */
const DEFAULT_ACCOUNT_CONCURRENCY = 1000;
const LAMBDA_MINIMUM_UNRESERVED = 100;

/** What the test measured in the templates, for RELIABILITY.md (recorded once both ran). */
const figures: Record<string, unknown> = {};
afterAll(async () => {
  await recordFigures('cdk-hardening', figures);
});

/**
 * A CloudFormation value as text: joins joined, `{Ref:Id}` / `{Id.Attr}` for references, so a
 * template string can be compared with the same function applied to the same placeholders.
 */
const flatten = (value: unknown): string => {
  if (typeof value === 'string') return value;
  const token = value as { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::Join'?: [string, unknown[]] };
  if (token['Fn::Join']) return token['Fn::Join'][1].map(flatten).join(token['Fn::Join'][0]);
  if (token.Ref !== undefined) return `{Ref:${token.Ref}}`;
  if (token['Fn::GetAtt']) return `{${token['Fn::GetAtt'].join('.')}}`;
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
};

describe('the default prod stage without a certificate', () => {
  it('refuses to synthesize, naming -c certificateArn=... and -c allowInsecureHttp=true', () => {
    let message = '';
    try {
      readDeploymentContext(new App({ context: {} }).node, {});
    } catch (error) {
      expect(error).toBeInstanceOf(DeploymentConfigError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/-c certificateArn=.*-c allowInsecureHttp=true/);
    expect(message).not.toContain('\n');
    figures.synthRefusal = message;
  });
});

describe.each([
  { transport: 'sqs', https: true, context: { certificateArn: CERTIFICATE } as Record<string, string> },
  { transport: 'kinesis', https: false, context: { allowInsecureHttp: 'true' } as Record<string, string> },
  // Kinesis as a high-volume production stage runs it: HTTPS, with a late window of its own.
  {
    transport: 'kinesis',
    https: true,
    context: { certificateArn: CERTIFICATE, lateWindowHours: '96' } as Record<string, string>,
  },
] as const)('hardened prod stage, transport=$transport, https=$https', ({ transport, https, context }) => {
  let synth: Synthesized;
  const t = () => synth.template;
  const json = () =>
    t().toJSON() as { Resources: Record<string, { Type: string; Properties: CfnProperties }> };
  const fnId = (service: string) =>
    logicalIdOf(t(), 'AWS::Lambda::Function', { FunctionName: `tollgate-prod-${service}` });
  const only = (type: string): [string, CfnProperties] => {
    const entries = Object.entries(resourcesOf(t(), type));
    expect(entries, type).toHaveLength(1);
    const [id, resource] = entries[0] as [string, { Properties?: CfnProperties }];
    return [id, resource.Properties];
  };

  beforeAll(() => {
    // The default stage (prod), as `npm run synth -- -c …` would build it.
    synth = synthesize({ transport, region: REGION, ...context });
  });
  afterAll(() => synth?.cleanUp());

  it('synthesizes with no cdk-nag finding left, and no acknowledgment of a missing WAF on API Gateway', () => {
    expect(synth.violations).toEqual([]);
    expect(synth.acknowledgments.filter((a) => a.rule === 'AwsSolutions-APIG3')).toEqual([]);
  });

  describe('key API listeners', () => {
    const listeners = () =>
      Object.values(resourcesOf(t(), 'AWS::ElasticLoadBalancingV2::Listener')).map(
        (l) => l.Properties as CfnProperties,
      );

    it.runIf(https)(
      'with a certificate: HTTPS on 443 to the functions, and port 80 only redirecting (301) to HTTPS',
      () => {
        const [albId] = only('AWS::ElasticLoadBalancingV2::LoadBalancer');
        const https = listeners().find((l) => l.Port === 443);
        const http = listeners().find((l) => l.Port === 80);
        expect(listeners()).toHaveLength(2);
        expect(https).toMatchObject({
          Protocol: 'HTTPS',
          Certificates: [{ CertificateArn: CERTIFICATE }],
          LoadBalancerArn: { Ref: albId },
        });
        expect(https.DefaultActions[0].Type).toBe('forward');
        expect(http).toMatchObject({ Protocol: 'HTTP', LoadBalancerArn: { Ref: albId } });
        expect(http.DefaultActions).toEqual([
          {
            Type: 'redirect',
            RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' },
          },
        ]);
        // No listener rule on port 80: nothing there reaches a function.
        const rules = Object.values(resourcesOf(t(), 'AWS::ElasticLoadBalancingV2::ListenerRule'));
        const redirectId = Object.entries(resourcesOf(t(), 'AWS::ElasticLoadBalancingV2::Listener')).find(
          ([, l]) => (l.Properties as CfnProperties).Port === 80,
        )?.[0];
        expect(
          rules.filter((r) => JSON.stringify(r.Properties?.ListenerArn).includes(`"${redirectId}"`)),
        ).toEqual([]);
        figures.listenersWithCertificate = listeners()
          .map((l) => `${l.Protocol} ${l.Port} → ${l.DefaultActions[0].Type}`)
          .sort();
      },
    );

    it.runIf(!https)('with allowInsecureHttp: one plain HTTP listener on 80 and no redirect', () => {
      expect(listeners()).toHaveLength(1);
      expect(listeners()[0]).toMatchObject({ Port: 80, Protocol: 'HTTP' });
      expect(listeners()[0].DefaultActions[0].Type).toBe('forward');
      figures.listenersWithAllowInsecureHttp = listeners().map(
        (l) => `${l.Protocol} ${l.Port} → ${l.DefaultActions[0].Type}`,
      );
    });
  });

  describe('WAF', () => {
    it('puts a REGIONAL web ACL on the ALB, the user API stage (a REST API) and the user pool', () => {
      const [albId] = only('AWS::ElasticLoadBalancingV2::LoadBalancer');
      const [apiId] = only('AWS::ApiGateway::RestApi');
      const [stageId] = only('AWS::ApiGateway::Stage');
      const [poolId] = only('AWS::Cognito::UserPool');
      const acls = resourcesOf(t(), 'AWS::WAFv2::WebACL');
      const associations = Object.values(resourcesOf(t(), 'AWS::WAFv2::WebACLAssociation')).map(
        (a) => a.Properties as CfnProperties,
      );
      expect(Object.keys(acls)).toHaveLength(3);
      for (const acl of Object.values(acls)) expect(acl.Properties?.Scope).toBe('REGIONAL');
      const targets = Object.fromEntries(
        associations.map((a) => [flatten(a.ResourceArn), a.WebACLArn['Fn::GetAtt'][0] as string]),
      );
      expect(Object.keys(targets).sort()).toEqual(
        [
          `{Ref:${albId}}`,
          `arn:aws:apigateway:${REGION}::/restapis/{Ref:${apiId}}/stages/{Ref:${stageId}}`,
          `{${poolId}.Arn}`,
        ].sort(),
      );
      // One ACL each (their rate limits differ), all of them associated.
      expect(new Set(Object.values(targets))).toEqual(new Set(Object.keys(acls)));
      figures.wafAssociations = associations.length;
      figures.wafTargets = ['ALB (key API)', 'API Gateway REST API stage v1 (user API)', 'Cognito user pool'];
    });

    it('blocks a source IP past its rate, and runs the AWS common and known-bad-inputs rule groups', () => {
      const acls = Object.values(resourcesOf(t(), 'AWS::WAFv2::WebACL')).map(
        (a) => a.Properties as CfnProperties,
      );
      const byName = (suffix: string) => acls.find((a) => a.Name === `tollgate-prod-${suffix}`);
      const limits: Record<string, number> = {};
      for (const [suffix, limit] of [
        ['key-api', DEFAULT_RATE_LIMITS.keyApi],
        ['user-api', DEFAULT_RATE_LIMITS.userApi],
        ['user-pool', DEFAULT_RATE_LIMITS.userPool],
      ] as const) {
        const acl = byName(suffix);
        expect(acl?.DefaultAction, suffix).toEqual({ Allow: {} });
        const rate = acl.Rules.find((r: CfnProperties) => r.Statement.RateBasedStatement);
        expect(rate, suffix).toMatchObject({
          Priority: 0,
          Action: { Block: {} },
          Statement: {
            RateBasedStatement: {
              Limit: limit,
              AggregateKeyType: 'IP',
              EvaluationWindowSec: RATE_WINDOW_SECONDS,
            },
          },
        });
        const groups = acl.Rules.filter((r: CfnProperties) => r.Statement.ManagedRuleGroupStatement);
        expect(groups.map((g: CfnProperties) => g.Statement.ManagedRuleGroupStatement.Name)).toEqual([
          ...MANAGED_RULE_GROUPS,
        ]);
        for (const group of groups) {
          expect(group.Statement.ManagedRuleGroupStatement.VendorName).toBe('AWS');
          expect(group.OverrideAction).toEqual({ None: {} });
        }
        // Only the key API counts (not blocks) two common rules its program clients would trip.
        const counted = groups.flatMap(
          (g: CfnProperties) =>
            g.Statement.ManagedRuleGroupStatement.RuleActionOverrides?.map((o: CfnProperties) => o.Name) ??
            [],
        );
        expect(counted, suffix).toEqual(
          suffix === 'key-api' ? ['SizeRestrictions_BODY', 'NoUserAgent_HEADER'] : [],
        );
        limits[suffix] = rate.Statement.RateBasedStatement.Limit;
      }
      figures.wafRateLimitsPerIp = { ...limits, windowSeconds: RATE_WINDOW_SECONDS };
    });
  });

  it('throttles the minting routes (create, reveal, roll) tighter than the stage', () => {
    const [, stage] = only('AWS::ApiGateway::Stage');
    const settings: CfnProperties[] = stage.MethodSettings;
    const stageWide = settings.find((s) => s.ResourcePath === '/*' && s.HttpMethod === '*');
    const routes: Record<string, { rate: number; burst: number }> = {};
    for (const route of MINTING_ROUTES) {
      const path = `/${route.path}`.replaceAll('/', '~1');
      const setting = settings.find((s) => s.ResourcePath === `/${path}` && s.HttpMethod === route.method);
      expect(setting, `${route.method} /${route.path}`).toBeDefined();
      expect(setting.ThrottlingRateLimit).toBeLessThan(stageWide.ThrottlingRateLimit);
      expect(setting.ThrottlingBurstLimit).toBeLessThan(stageWide.ThrottlingBurstLimit);
      routes[`${route.method} /${route.path}`] = {
        rate: setting.ThrottlingRateLimit,
        burst: setting.ThrottlingBurstLimit,
      };
    }
    // Every other route keeps the stage's bucket only.
    expect(settings.filter((s) => s.ThrottlingRateLimit !== undefined)).toHaveLength(
      MINTING_ROUTES.length + 1,
    );
    figures.apiGatewayThrottling = {
      stage: { rate: stageWide.ThrottlingRateLimit, burst: stageWide.ThrottlingBurstLimit },
      ...routes,
    };
  });

  it('reserves concurrency for key-api, leaving the default account pool well above its unreserved minimum', () => {
    const functions = Object.values(resourcesOf(t(), 'AWS::Lambda::Function'));
    const keyApi = json().Resources[fnId(SERVICE_NAMES.keyApi)]?.Properties;
    expect(keyApi.ReservedConcurrentExecutions).toBe(DEFAULT_KEY_API_RESERVED_CONCURRENCY);
    const reserved = functions.reduce(
      (sum, fn) => sum + ((fn.Properties?.ReservedConcurrentExecutions as number) ?? 0),
      0,
    );
    const unreserved = DEFAULT_ACCOUNT_CONCURRENCY - reserved;
    expect(unreserved).toBeGreaterThanOrEqual(LAMBDA_MINIMUM_UNRESERVED * 5);
    figures.keyApiReservedConcurrency = keyApi.ReservedConcurrentExecutions;
    figures.unreservedOfDefaultAccountConcurrency = {
      unreserved,
      parameters: { accountLimit: DEFAULT_ACCOUNT_CONCURRENCY },
    };
  });

  it("sends the local site's Content-Security-Policy from CloudFront, with HSTS, nosniff, frame denial and the referrer policy", async () => {
    const [policyId, policy] = only('AWS::CloudFront::ResponseHeadersPolicy');
    const [, distribution] = only('AWS::CloudFront::Distribution');
    expect(distribution.DistributionConfig.DefaultCacheBehavior.ResponseHeadersPolicyId).toEqual({
      Ref: policyId,
    });
    const headers = policy.ResponseHeadersPolicyConfig.SecurityHeadersConfig;
    const [apiId] = only('AWS::ApiGateway::RestApi');
    const [albId] = only('AWS::ElasticLoadBalancingV2::LoadBalancer');
    const scheme = https ? 'https' : 'http';
    const origins = [
      `https://cognito-idp.${REGION}.{Ref:AWS::URLSuffix}`,
      `https://{Ref:${apiId}}.execute-api.${REGION}.{Ref:AWS::URLSuffix}`,
      `${scheme}://{${albId}.DNSName}`,
    ];
    const csp = flatten(headers.ContentSecurityPolicy.ContentSecurityPolicy);
    expect(csp).toBe(webContentSecurityPolicy(origins));
    expect(headers.ContentSecurityPolicy.Override).toBe(true);
    expect(headers.StrictTransportSecurity).toMatchObject({
      AccessControlMaxAgeSec: 31_536_000,
      Override: true,
    });
    expect(headers.ContentTypeOptions).toEqual({ Override: true });
    expect(headers.FrameOptions).toEqual({ FrameOption: 'DENY', Override: true });
    expect(headers.ReferrerPolicy).toEqual({
      ReferrerPolicy: 'strict-origin-when-cross-origin',
      Override: true,
    });

    // The local site, given the same origins, answers the very same header (only connect-src varies).
    const config: WebConfig = {
      region: REGION,
      cognito: { userPoolId: 'p', clientId: 'c', endpoint: 'https://cognito-idp.example:1' },
      userApi: 'https://user-api.example:2/v1/',
      keyApi: `${scheme}://key-api.example:3`,
      windows: { keyCacheFreshMs: 10_000, rollGraceMs: 86_400_000 },
    };
    const local = await createLocalSiteApp({ config, root: '/nonexistent' }).request('/config.json');
    const localOrigins = [
      'https://cognito-idp.example:1',
      'https://user-api.example:2',
      `${scheme}://key-api.example:3`,
    ];
    expect(local.headers.get('content-security-policy')).toBe(webContentSecurityPolicy(localOrigins));
    const withoutConnect = (policy: string) => policy.replace(/connect-src [^;]*/, 'connect-src');
    expect(withoutConnect(csp)).toBe(withoutConnect(local.headers.get('content-security-policy') ?? ''));
    if (transport === 'sqs') figures.cloudFrontCsp = csp;
  });

  it.runIf(transport === 'kinesis')(
    'keeps the stream at least the late window metering is configured with (-c lateWindowHours)',
    () => {
      const [, stream] = only('AWS::Kinesis::Stream');
      const lateWindowHours =
        'lateWindowHours' in context
          ? Number(context.lateWindowHours)
          : DEFAULT_ACCEPTANCE_WINDOW.lateMs / 3_600_000;
      expect(stream.RetentionPeriodHours).toBeGreaterThanOrEqual(lateWindowHours + 24);
      const metering = json().Resources[fnId(SERVICE_NAMES.metering)]?.Properties;
      expect(metering.Environment.Variables[ENV.lateWindowMs]).toBe(String(lateWindowHours * 3_600_000));
      if (!('lateWindowHours' in context)) {
        figures.kinesisRetention = { retentionHours: stream.RetentionPeriodHours, lateWindowHours };
      }
    },
  );

  it('lets only key-api and the owner API publish usage: a Deny on everyone else in the queue or stream policy', () => {
    const resourceId =
      transport === 'sqs'
        ? logicalIdOf(t(), 'AWS::SQS::Queue', { QueueName: queueName('prod', usageQueue) })
        : only('AWS::Kinesis::Stream')[0];
    const documents =
      transport === 'sqs'
        ? Object.values(resourcesOf(t(), 'AWS::SQS::QueuePolicy'))
            .filter((p) => JSON.stringify(p.Properties?.Queues) === JSON.stringify([{ Ref: resourceId }]))
            .map((p) => p.Properties?.PolicyDocument as CfnProperties)
        : Object.values(resourcesOf(t(), 'AWS::Kinesis::ResourcePolicy'))
            .filter(
              (p) =>
                JSON.stringify(p.Properties?.ResourceArn) ===
                JSON.stringify({ 'Fn::GetAtt': [resourceId, 'Arn'] }),
            )
            .map((p) => p.Properties?.ResourcePolicy as CfnProperties);
    expect(documents).toHaveLength(1);
    const denies = (documents[0].Statement as CfnProperties[]).filter(
      (s) => s.Effect === 'Deny' && s.Condition?.ArnNotEquals,
    );
    expect(denies).toHaveLength(1);
    const deny = denies[0];
    const actions = [deny.Action].flat();
    expect(actions.sort()).toEqual([...PUBLISH_ACTIONS[transport]].sort());
    expect(deny.Principal).toEqual({ AWS: '*' });
    expect(deny.Resource).toEqual({ 'Fn::GetAtt': [resourceId, 'Arn'] });

    // The roles spared are exactly those of the functions IAM lets publish (key-api and the owner
    // API; on the queue metering too, for the SQS ledger's scheduled tails) and, on the queue
    // only, the redrive role (npm run usage:redrive); never on the stream.
    const spared: string[] = deny.Condition.ArnNotEquals['aws:PrincipalArn'].map(
      (arn: CfnProperties) => arn['Fn::GetAtt'][0],
    );
    const redriveRole = Object.keys(resourcesOf(t(), 'AWS::IAM::Role')).find((id) =>
      id.includes('RedriveRole'),
    );
    expect(redriveRole).toBeDefined();
    // Billing's functions are not deployed here (no billingMeterId); they publish no usage anyway.
    const publishers = Object.values(SERVICE_NAMES)
      .filter((service) => service !== SERVICE_NAMES.billing)
      .filter((service) =>
        permissionsOf(t(), fnId(service)).some(
          (p) => actions.includes(p.action) && p.resource.includes(`"${resourceId}"`),
        ),
      );
    expect(publishers.sort()).toEqual(
      [
        SERVICE_NAMES.keyApi,
        SERVICE_NAMES.exampleApi,
        ...(transport === 'sqs' ? [SERVICE_NAMES.metering] : []),
      ].sort(),
    );
    const roleOf = (service: string) => json().Resources[fnId(service)]?.Properties.Role['Fn::GetAtt'][0];
    expect(spared.sort()).toEqual(
      [...publishers.map(roleOf), ...(transport === 'sqs' ? [redriveRole] : [])].sort(),
    );
    // Administration stays possible: the policy denies publishing only, never its own management.
    for (const statement of documents[0].Statement as CfnProperties[]) {
      if (statement.Condition?.Bool?.['aws:SecureTransport'] === 'false') continue;
      expect([statement.Action].flat().every((a: string) => !a.endsWith('*'))).toBe(true);
    }
    figures[`publishersAllowed_${transport}`] = {
      actions,
      principals: [
        ...publishers.map((service) => `${service} role`),
        ...(transport === 'sqs' ? ['the redrive role'] : []),
      ],
    };
  });
});
