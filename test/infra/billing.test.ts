import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BILLING_WEBHOOK_PATH, DEFAULT_EXPORT_INTERVAL_MS } from '../../contracts/billing';
import { CONFIG_SCHEMAS, ENV, requiredVariables } from '../../contracts/config';
import { BillingMetric, METRICS_NAMESPACE, SERVICE_NAMES } from '../../contracts/metric-names';
import { tableName, tables } from '../../contracts/resources';
import { BILLING_CUSTOMER_PARTITIONS } from '../../infra/cdk/constructs/data-tables';
import { MAX_BILLING_EXPORT_LAG_SECONDS } from '../../infra/cdk/constructs/operations/alarms';
import { accountPartition, customerAccountItem, handledEventItem } from '../../services/billing/billing-keys';
import {
  logicalIdOf,
  type Permission,
  permissionsOf,
  resourcesOf,
  type Synthesized,
  synthesize,
} from './synth';

// biome-ignore lint/suspicious/noExplicitAny: the template is untyped JSON; assertions check its shape.
type CfnProperties = any;

const STAGE = 'test';
const METER = 'mtr_test_61Tollgate';
const CERTIFICATE = 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555';
const RUNTIME_ENV = ['NODE_OPTIONS', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE'];
const SECRET_ARN_VARIABLES: string[] = [ENV.stripeSecretKeyArn, ENV.stripeWebhookSecretArn];

describe('TollgateStack with billing (-c billingMeterId)', () => {
  let synth: Synthesized;
  const t = () => synth.template;
  const json = () =>
    t().toJSON() as {
      Resources: Record<string, { Type: string; Properties: CfnProperties }>;
      Outputs: Record<string, CfnProperties>;
    };
  const fnId = (suffix: string) =>
    logicalIdOf(t(), 'AWS::Lambda::Function', { FunctionName: `tollgate-${STAGE}-${suffix}` });
  const webhook = () => fnId(`${SERVICE_NAMES.billing}-webhook`);
  const schedule = () => fnId(`${SERVICE_NAMES.billing}-schedule`);
  const userApi = () => fnId(SERVICE_NAMES.userApi);
  const envOf = (id: string): Record<string, unknown> =>
    json().Resources[id]?.Properties.Environment.Variables;
  const secretId = (name: string) =>
    logicalIdOf(t(), 'AWS::SecretsManager::Secret', { Name: `tollgate/${STAGE}/${name}` });
  const tableId = (id: string) => {
    const table = tables.find((candidate) => candidate.id === id);
    if (!table) throw new Error(`no table ${id}`);
    return logicalIdOf(t(), 'AWS::DynamoDB::Table', { TableName: tableName(STAGE, table) });
  };
  const on = (granted: Permission[], logicalId: string) =>
    granted.filter((p) => p.resource.includes(`"${logicalId}"`));
  /** A reference's value in the shape CloudFormation resolves it to (names, ARNs, URLs). */
  const resolved = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const token = value as { Ref?: string; 'Fn::GetAtt'?: string[]; 'Fn::Join'?: [string, unknown[]] };
    if (token['Fn::Join']) return token['Fn::Join'][1].map(resolved).join(token['Fn::Join'][0]);
    if (token.Ref === 'AWS::URLSuffix') return 'amazonaws.com';
    if (token.Ref === 'AWS::Region') return 'eu-west-1';
    if (token.Ref !== undefined && json().Resources[token.Ref]?.Type === 'AWS::SecretsManager::Secret')
      return `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${token.Ref}-AbCdEf`;
    if (token.Ref !== undefined) return token.Ref.toLowerCase();
    if (token['Fn::GetAtt']) return token['Fn::GetAtt'].join('-').toLowerCase();
    throw new Error(`unexpected value in an environment: ${JSON.stringify(value)}`);
  };

  beforeAll(() => {
    synth = synthesize({
      stage: STAGE,
      region: 'eu-west-1',
      certificateArn: CERTIFICATE,
      billingMeterId: METER,
    });
  });
  afterAll(() => synth?.cleanUp());

  it('synthesizes with no cdk-nag finding unacknowledged, each acknowledgment with its reason', () => {
    expect(synth.violations).toEqual([]);
    for (const a of synth.acknowledgments.filter((ack) => ack.path.includes('/Billing/'))) {
      expect(a.reason.length, `${a.rule} on ${a.path}`).toBeGreaterThan(60);
    }
  });

  it(`routes POST ${BILLING_WEBHOOK_PATH} on an HTTP API of its own, without an authorizer, to the webhook function only`, () => {
    const routes = Object.values(resourcesOf(t(), 'AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes.map((r: CfnProperties) => r.RouteKey)).toEqual([`POST ${BILLING_WEBHOOK_PATH}`]);
    const route: CfnProperties = routes[0];
    // Stripe signs its deliveries; it presents no token.
    expect(route.AuthorizationType).toBe('NONE');
    const integrationId = route.Target['Fn::Join'][1][1].Ref as string;
    const integration = json().Resources[integrationId]?.Properties;
    expect(integration.IntegrationType).toBe('AWS_PROXY');
    expect(integration.IntegrationUri).toEqual({ 'Fn::GetAtt': [webhook(), 'Arn'] });
    // Its stage logs every request and caps what a flood of forged deliveries costs.
    const stage = Object.values(resourcesOf(t(), 'AWS::ApiGatewayV2::Stage'))[0]?.Properties as CfnProperties;
    expect(stage.StageName).toBe('$default');
    expect(stage.AccessLogSettings.DestinationArn).toBeDefined();
    expect(stage.DefaultRouteSettings.ThrottlingRateLimit).toBeGreaterThan(0);
    // The operator registers this URL in Stripe.
    expect(JSON.stringify(json().Outputs.BillingWebhookUrl.Value)).toContain(BILLING_WEBHOOK_PATH);
  });

  it('runs the export every export interval and the reconciliation daily, each with its job as input, on the schedule function', () => {
    // The others are metering's (the SQS ledger's backstop: sqs-ledger.test.ts).
    const rules = Object.values(resourcesOf(t(), 'AWS::Events::Rule'))
      .map((r) => r.Properties as CfnProperties)
      .filter((rule) => JSON.stringify(rule.Targets).includes(`"${schedule()}"`));
    const jobs = Object.fromEntries(
      rules.map((rule) => {
        expect(rule.Targets).toHaveLength(1);
        expect(rule.Targets[0].Arn).toEqual({ 'Fn::GetAtt': [schedule(), 'Arn'] });
        return [JSON.parse(rule.Targets[0].Input).job, rule.ScheduleExpression];
      }),
    );
    expect(jobs).toEqual({
      export: `rate(${DEFAULT_EXPORT_INTERVAL_MS / 60_000} minutes)`,
      reconcile: 'cron(30 2 * * ? *)',
    });
    for (const rule of rules) expect(JSON.parse(rule.Targets[0].Input)).toEqual({ job: expect.any(String) });
    // EventBridge may invoke the schedule function; nothing else invokes it.
    const invokers = Object.values(resourcesOf(t(), 'AWS::Lambda::Permission'))
      .map((p) => p.Properties as CfnProperties)
      .filter((p) => JSON.stringify(p.FunctionName).includes(`"${schedule()}"`));
    expect(invokers.map((p) => p.Principal)).toEqual(['events.amazonaws.com', 'events.amazonaws.com']);
  });

  it('lets exactly the functions that need them read the Stripe secrets: the webhook both, the schedule and user-api the secret key', () => {
    const key = secretId('stripe-secret-key');
    const signing = secretId('stripe-webhook-secret');
    // Every policy in the stack, whoever's role it is (aws-cdk-lib's own handlers included).
    const roleOfFunction = (roleId: string) =>
      Object.entries(resourcesOf(t(), 'AWS::Lambda::Function'))
        .filter(
          ([, fn]) =>
            JSON.stringify((fn.Properties as CfnProperties).Role) ===
            JSON.stringify({ 'Fn::GetAtt': [roleId, 'Arn'] }),
        )
        .map(([id]) => id);
    const readers = (secret: string) =>
      Object.values(resourcesOf(t(), 'AWS::IAM::Policy'))
        .map((policy) => policy.Properties as CfnProperties)
        .filter((policy) =>
          (policy.PolicyDocument.Statement as CfnProperties[]).some(
            (statement) =>
              [statement.Action].flat().includes('secretsmanager:GetSecretValue') &&
              JSON.stringify([statement.Resource].flat()).includes(`"${secret}"`),
          ),
        )
        .flatMap((policy) =>
          (policy.Roles as Array<{ Ref: string }>).flatMap((role) => roleOfFunction(role.Ref)),
        )
        .sort();
    expect(readers(key)).toEqual([webhook(), schedule(), userApi()].sort());
    expect(readers(signing)).toEqual([webhook()]);
    // No wildcard of secrets: each grant names its secret.
    for (const id of [webhook(), schedule(), userApi()]) {
      for (const p of permissionsOf(t(), id).filter((q) => q.action.startsWith('secretsmanager:'))) {
        expect([JSON.stringify({ Ref: key }), JSON.stringify({ Ref: signing })]).toContain(p.resource);
      }
    }
  });

  it("puts no secret value in any function's environment: the secrets' ARNs only, under their ARN variables", () => {
    const secrets = Object.keys(resourcesOf(t(), 'AWS::SecretsManager::Secret'));
    expect(secrets).toHaveLength(2);
    for (const [id, resource] of Object.entries(resourcesOf(t(), 'AWS::Lambda::Function'))) {
      const variables = (resource.Properties as CfnProperties)?.Environment?.Variables ?? {};
      for (const [name, value] of Object.entries(variables)) {
        const text = JSON.stringify(value);
        // A dynamic reference would put the value itself in the function's configuration.
        expect(text, `${id} ${name}`).not.toMatch(
          /resolve:secretsmanager|SecretString|sk_(live|test)_|whsec_/,
        );
        if (secrets.some((secret) => text.includes(`"${secret}"`))) {
          expect(SECRET_ARN_VARIABLES, `${id} ${name}`).toContain(name);
          expect(secrets.map((secret) => JSON.stringify({ Ref: secret }))).toContain(text);
        }
      }
    }
    // The secrets themselves hold a generated placeholder, never a value from the template.
    for (const secret of Object.values(resourcesOf(t(), 'AWS::SecretsManager::Secret'))) {
      expect((secret.Properties as CfnProperties).SecretString).toBeUndefined();
    }
  });

  it('gives the billing functions and user-api exactly the variables their config schemas read, and values they accept', () => {
    const cases: Array<[string, string]> = [
      [webhook(), SERVICE_NAMES.billing],
      [schedule(), SERVICE_NAMES.billing],
      [userApi(), SERVICE_NAMES.userApi],
    ];
    for (const [id, service] of cases) {
      const schema = CONFIG_SCHEMAS[service as keyof typeof CONFIG_SCHEMAS];
      const variables = envOf(id);
      const set = Object.keys(variables);
      const declared = new Set([...RUNTIME_ENV, ...Object.keys(schema.shape)]);
      expect(
        set.filter((name) => !declared.has(name)),
        id,
      ).toEqual([]);
      expect(
        requiredVariables(schema).filter((name) => !set.includes(name)),
        id,
      ).toEqual([]);
      const deployed = Object.fromEntries(
        set.filter((name) => !RUNTIME_ENV.includes(name)).map((name) => [name, resolved(variables[name])]),
      );
      const parsed = schema.safeParse(deployed);
      expect(parsed.error?.issues ?? [], `${id}: ${JSON.stringify(deployed)}`).toEqual([]);
      expect(variables.POWERTOOLS_SERVICE_NAME).toBe(service);
    }
    expect(envOf(webhook())[ENV.billingMeterId]).toBe(METER);
    // user-api's billing routes are all-or-none: here, all; Checkout returns to the page.
    const user = envOf(userApi());
    for (const name of [ENV.billingTable, ENV.stripeSecretKeyArn, ENV.billingReturnUrl]) {
      expect(user[name], name).toBeDefined();
    }
    expect(resolved(user[ENV.billingReturnUrl])).toMatch(/^https:\/\//);
    expect(JSON.stringify(user[ENV.billingReturnUrl])).toContain('DomainName');
  });

  it('lets the billing jobs own the billing table, read usage and plans, and only read and update accounts', () => {
    for (const id of [webhook(), schedule()]) {
      const granted = permissionsOf(t(), id).filter((p) => p.action.startsWith('dynamodb:'));
      expect(on(granted, tableId('billing')).length).toBeGreaterThan(0);
      expect(on(granted, tableId('keys'))).toEqual([]);
      expect(
        on(granted, tableId('accounts'))
          .map((p) => p.action)
          .sort(),
      ).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
      expect([...new Set(on(granted, tableId('plans')).map((p) => p.action))].sort()).toEqual([
        'dynamodb:GetItem',
        'dynamodb:Scan',
      ]);
      expect(
        on(granted, tableId('usage'))
          .map((p) => p.action)
          .sort(),
      ).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query']);
      for (const p of granted) expect(p.resource, p.action).not.toContain('*');
    }
  });

  it("lets user-api touch only the billing table's account and customer partitions, never the handled events, never a delete", () => {
    const granted = on(permissionsOf(t(), userApi()), tableId('billing'));
    expect(granted.map((p) => p.action).sort()).toEqual([
      'dynamodb:ConditionCheckItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
    const patterns = BILLING_CUSTOMER_PARTITIONS.map((prefix) => `${prefix}*`);
    for (const p of granted) {
      expect(p.condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': patterns } });
    }
    // The prefixes are billing-keys.ts's: an account's items and the customer map match, events do not.
    const matches = (key: string) => BILLING_CUSTOMER_PARTITIONS.some((prefix) => key.startsWith(prefix));
    expect(matches(accountPartition('acc_1'))).toBe(true);
    expect(matches(customerAccountItem('cus_1').pk)).toBe(true);
    expect(matches(handledEventItem('evt_1').pk)).toBe(false);
  });

  it("serves user-api's billing routes on its REST API behind the Cognito authorizer", () => {
    const resources = resourcesOf(t(), 'AWS::ApiGateway::Resource');
    const pathOf = (id: string): string => {
      const props = resources[id]?.Properties as CfnProperties;
      const parent = props.ParentId.Ref as string | undefined;
      return `${parent ? pathOf(parent) : ''}/${props.PathPart}`;
    };
    const routes = Object.values(resourcesOf(t(), 'AWS::ApiGateway::Method'))
      .map((m) => m.Properties as CfnProperties)
      .filter((m) => m.HttpMethod !== 'OPTIONS' && m.ResourceId?.Ref)
      .map((m) => ({ route: `${m.HttpMethod} ${pathOf(m.ResourceId.Ref)}`, method: m }));
    const billing = routes.filter(({ route }) => route.includes('billing'));
    expect(billing.map(({ route }) => route).sort()).toEqual(
      ['POST /billing/checkout', 'POST /billing/portal', 'GET /me/billing', 'GET /billing/plans'].sort(),
    );
    for (const { route, method } of billing) {
      expect(method.AuthorizationType, route).toBe('COGNITO_USER_POOLS');
      expect(JSON.stringify(method.Integration.Uri), route).toContain(userApi());
    }
  });

  it('alarms when billed differs from metered after the reconciliation, and when the export lags more than two intervals', () => {
    const alarms = Object.values(resourcesOf(t(), 'AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as CfnProperties,
    );
    const byName = (suffix: string) => alarms.find((a) => a.AlarmName === `tollgate-${STAGE}-${suffix}`);
    const metricOf = (metricName: string) => ({
      Namespace: METRICS_NAMESPACE,
      MetricName: metricName,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAMES.billing }],
      Statistic: 'Maximum',
      TreatMissingData: 'notBreaching',
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(byName('billing-drift')).toMatchObject({ ...metricOf(BillingMetric.drift), Threshold: 0 });
    const lag = byName('billing-export-lag');
    expect(lag).toMatchObject({
      ...metricOf(BillingMetric.exportLag),
      Threshold: MAX_BILLING_EXPORT_LAG_SECONDS,
    });
    // One missed export is retried by the next; the alarm waits past two.
    expect(lag.Threshold).toBeGreaterThan((2 * DEFAULT_EXPORT_INTERVAL_MS) / 1000);
    expect(lag.Threshold).toBeLessThanOrEqual((4 * DEFAULT_EXPORT_INTERVAL_MS) / 1000);
    for (const alarm of [byName('billing-drift'), lag]) {
      expect(alarm.AlarmActions).toEqual(byName('usage-dead-letters').AlarmActions);
      expect(alarm.OKActions).toHaveLength(1);
    }
  });

  it('charts every billing metric on the operations dashboard, under the billing service', () => {
    const dashboard = Object.values(resourcesOf(t(), 'AWS::CloudWatch::Dashboard'))[0];
    const flatten = (value: unknown): string => {
      if (typeof value === 'string') return value;
      const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
      return join ? join[1].map(flatten).join(join[0]) : 'REF';
    };
    const body = JSON.parse(flatten(dashboard?.Properties?.DashboardBody)) as {
      widgets: Array<{ properties: { metrics?: unknown[][] } }>;
    };
    const rows = body.widgets
      .flatMap((w) => w.properties.metrics ?? [])
      .filter((row) => row[0] === METRICS_NAMESPACE && row[3] === SERVICE_NAMES.billing);
    expect(new Set(rows.map((row) => row[1]))).toEqual(new Set(Object.values(BillingMetric)));
  });
});
