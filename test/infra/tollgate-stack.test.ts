import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_SCHEMAS, DEFAULT_ACCEPTANCE_WINDOW, ENV, requiredVariables } from '../../contracts/config';
import {
  KeyApiMetric,
  METRICS_NAMESPACE,
  MeteringMetric,
  MeteringRefusedMetric,
  SERVICE_NAMES,
  UserApiMetric,
} from '../../contracts/metric-names';
import { ADMIN_GROUP } from '../../contracts/plans';
import { usageRedelivery } from '../../contracts/redelivery';
import {
  ACCOUNT_DIRECTORY_INDEX,
  KEY_LOOKUP_INDEX,
  keysTable,
  queueName,
  tableName,
  tables,
  usageQueue,
  usageStream,
  userPool,
} from '../../contracts/resources';
import { REFUSAL_SUMMARY_ATTRIBUTES } from '../../infra/cdk/constructs/data-tables';
import { EXAMPLE_API_PATHS } from '../../infra/cdk/paths';
import {
  logicalIdOf,
  type Permission,
  permissionsOf,
  resourcesOf,
  type Synthesized,
  synthesize,
} from './synth';

/** Properties of a synthesized resource: CloudFormation JSON, read by path in assertions. */
// biome-ignore lint/suspicious/noExplicitAny: the template is untyped JSON; assertions check its shape.
type CfnProperties = any;

const CERTIFICATE = 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555';
const STAGE = 'test';

/**
 * The deployables these stacks deploy: all but billing, which only a stack given a Stripe meter
 * (`-c billingMeterId`) has (test/infra/billing.test.ts).
 */
const SERVICES = Object.values(SERVICE_NAMES).filter((service) => service !== SERVICE_NAMES.billing);

/** Set on every function by TollgateFunction for the runtime and Powertools, not by a config schema. */
const RUNTIME_ENV = ['NODE_OPTIONS', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE'];

const WRITE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:TransactWriteItems',
  'dynamodb:ConditionCheckItem',
];

/** Every custom metric name the services publish (contracts/metric-names.ts, nested groups included). */
const namesIn = (value: unknown): string[] =>
  typeof value === 'string' ? [value] : Object.values(value as object).flatMap(namesIn);
const SERVICE_METRIC_NAMES = new Set([
  ...namesIn(KeyApiMetric),
  ...namesIn(MeteringMetric),
  ...namesIn(MeteringRefusedMetric),
  ...namesIn(UserApiMetric),
]);

describe.each([
  // SQS with HTTPS and a web page to deploy; Kinesis with plain HTTP and no page; Kinesis with
  // HTTPS, as a high-volume production stage runs it, and a late window of its own.
  {
    transport: 'sqs',
    https: true,
    context: { certificateArn: CERTIFICATE } as Record<string, string>,
    webAssets: true,
  },
  // The Kinesis variant also routes paths of its own to the owner API (ownerApiPaths).
  {
    transport: 'kinesis',
    https: false,
    context: { ownerApiPaths: '/v1/*,/openapi.json,/docs/*' } as Record<string, string>,
    webAssets: false,
  },
  {
    transport: 'kinesis',
    https: true,
    context: { certificateArn: CERTIFICATE, lateWindowHours: '72' } as Record<string, string>,
    webAssets: false,
  },
] as const)('TollgateStack with transport=$transport, https=$https', ({ transport, context, webAssets }) => {
  const https = 'certificateArn' in context;
  /** The late window the variant deploys with: `-c lateWindowHours`, else the default. */
  const lateWindowMs =
    'lateWindowHours' in context
      ? Number(context.lateWindowHours) * 3_600_000
      : DEFAULT_ACCEPTANCE_WINDOW.lateMs;
  const redelivery = usageRedelivery(lateWindowMs);
  let synth: Synthesized;
  let fnIds: Record<string, string>;
  let tableIds: Record<string, string>;
  let dlqId: string;

  const t = () => synth.template;
  const json = () =>
    t().toJSON() as { Resources: Record<string, { Type: string; Properties: CfnProperties }> };
  const permissions = (service: string): Permission[] => permissionsOf(t(), fnIds[service] as string);
  const mentions = (permission: Permission, logicalId: string) =>
    permission.resource.includes(`"${logicalId}"`);
  /** What publishing a usage event takes on this transport: [action, resource]. */
  const publishGrant = (): [string, string] => {
    const [action, id] =
      transport === 'sqs'
        ? [
            'sqs:SendMessage',
            logicalIdOf(t(), 'AWS::SQS::Queue', { QueueName: queueName(STAGE, usageQueue) }),
          ]
        : ['kinesis:PutRecord', Object.keys(resourcesOf(t(), 'AWS::Kinesis::Stream'))[0] as string];
    return [action, JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] })];
  };
  /** The listener that forwards to the functions (not port 80's redirect to HTTPS). */
  const appListenerId = (): string => {
    const ids = Object.entries(resourcesOf(t(), 'AWS::ElasticLoadBalancingV2::Listener'))
      .filter(([, l]) => (l.Properties as CfnProperties).DefaultActions[0].Type === 'forward')
      .map(([id]) => id);
    expect(ids).toHaveLength(1);
    return ids[0] as string;
  };
  /** Logical id of the target group the load balancer forwards to a service's function. */
  const targetGroupOf = (service: string): string =>
    logicalIdOf(t(), 'AWS::ElasticLoadBalancingV2::TargetGroup', {
      Targets: [{ Id: { 'Fn::GetAtt': [fnIds[service], 'Arn'] } }],
    });
  const keyLookupGrant = (): [string, string] => [
    'dynamodb:Query',
    JSON.stringify({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [tableIds.keys, 'Arn'] }, `/index/${KEY_LOOKUP_INDEX}`]],
    }),
  ];
  /**
   * A variable's value as CloudFormation would resolve it, in shape: a queue's Ref is its URL
   * (what `queueUrl` is), other Refs and attributes are names or ids, joins are joined.
   */
  const resolved = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const token = value as {
      Ref?: string;
      'Fn::GetAtt'?: [string, string];
      'Fn::Join'?: [string, unknown[]];
    };
    if (token['Fn::Join']) return token['Fn::Join'][1].map(resolved).join(token['Fn::Join'][0]);
    if (token.Ref === 'AWS::URLSuffix') return 'amazonaws.com';
    if (token.Ref !== undefined && json().Resources[token.Ref]?.Type === 'AWS::SQS::Queue') {
      return `https://sqs.eu-west-1.amazonaws.com/123456789012/${token.Ref.toLowerCase()}`;
    }
    if (token.Ref !== undefined) return token.Ref.toLowerCase();
    if (token['Fn::GetAtt']) return token['Fn::GetAtt'].join('-').toLowerCase();
    throw new Error(`unexpected value in a function's environment: ${JSON.stringify(value)}`);
  };

  beforeAll(() => {
    synth = synthesize({ stage: STAGE, transport, region: 'eu-west-1', ...context }, { webAssets });
    if (synth.violations.length > 0) return;
    fnIds = Object.fromEntries(
      SERVICES.map((service) => [
        service,
        logicalIdOf(t(), 'AWS::Lambda::Function', { FunctionName: `tollgate-${STAGE}-${service}` }),
      ]),
    );
    tableIds = Object.fromEntries(
      tables.map((table) => [
        table.id,
        logicalIdOf(t(), 'AWS::DynamoDB::Table', { TableName: tableName(STAGE, table) }),
      ]),
    );
    dlqId = logicalIdOf(t(), 'AWS::SQS::Queue', { QueueName: queueName(STAGE, usageQueue, true) });
  });
  afterAll(() => synth?.cleanUp());

  describe('cdk-nag (AwsSolutions)', () => {
    it('leaves no finding unacknowledged', () => {
      expect(synth.violations).toEqual([]);
    });

    it('gives every acknowledgment a specific reason', () => {
      const ours = synth.acknowledgments.filter((a) => a.rule.includes('AwsSolutions-'));
      expect(ours.length).toBeGreaterThan(0);
      for (const acknowledgment of ours) {
        expect(
          acknowledgment.reason.length,
          `${acknowledgment.rule} on ${acknowledgment.path}`,
        ).toBeGreaterThan(60);
      }
    });
  });

  describe('functions', () => {
    it('run Node.js 22 on arm64 with source maps, bundled as ESM', () => {
      for (const id of Object.values(fnIds)) {
        const props = json().Resources[id]?.Properties;
        expect(props.Runtime).toBe('nodejs22.x');
        expect(props.Architectures).toEqual(['arm64']);
        expect(props.Handler).toBe('index.handler');
        expect(props.Environment.Variables.NODE_OPTIONS).toBe('--enable-source-maps');
        expect(props.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE).toBe(METRICS_NAMESPACE);
        expect(props.LoggingConfig.LogGroup).toBeDefined();
      }
    });

    it("log JSON without Lambda's START/END/REPORT lines, every function of the stack", () => {
      const functions = Object.entries(resourcesOf(t(), 'AWS::Lambda::Function'));
      // Ours, plus the deploy-time handlers aws-cdk-lib adds (the default security group's
      // restriction; the bucket deployment's when the page is deployed).
      expect(functions.length).toBeGreaterThan(Object.keys(fnIds).length);
      for (const [id, fn] of functions) {
        // System level WARN: platform lines at INFO (START, END, REPORT per invocation) are not sent.
        expect(fn.Properties?.LoggingConfig, id).toMatchObject({
          LogFormat: 'JSON',
          SystemLogLevel: 'WARN',
        });
      }
      for (const [service, id] of Object.entries(fnIds)) {
        const logging = json().Resources[id]?.Properties.LoggingConfig;
        // Not above INFO: the EMF metric lines carry no level and count as INFO.
        expect(logging.ApplicationLogLevel, service).toBe('INFO');
        expect(logging.LogGroup, service).toBeDefined();
        // Lambda hands Powertools the level as AWS_LAMBDA_LOG_LEVEL; a second knob could only disagree.
        expect(json().Resources[id]?.Properties.Environment.Variables.POWERTOOLS_LOG_LEVEL).toBeUndefined();
      }
    });

    it('get exactly the variables their config schemas read', () => {
      for (const service of SERVICES) {
        const schema = CONFIG_SCHEMAS[service];
        const variables = json().Resources[fnIds[service] as string]?.Properties.Environment.Variables;
        const set = Object.keys(variables);
        // Nothing the schema does not declare, and everything it requires (no default, not optional).
        const declared = new Set([...RUNTIME_ENV, ...Object.keys(schema.shape)]);
        expect(
          set.filter((name) => !declared.has(name)),
          `${service} sets variables its schema does not read`,
        ).toEqual([]);
        expect(
          [...RUNTIME_ENV, ...requiredVariables(schema)].filter((name) => !set.includes(name)),
          `${service} lacks variables its schema requires`,
        ).toEqual([]);
        // And the environment as deployed passes the schema, refinements included (key-api needs
        // the queue URL over SQS and the stream name over Kinesis), once CloudFormation's references
        // are replaced by values of the shape they resolve to.
        const deployed = Object.fromEntries(
          set.filter((name) => !RUNTIME_ENV.includes(name)).map((name) => [name, resolved(variables[name])]),
        );
        const parsed = schema.safeParse(deployed);
        expect(parsed.error?.issues ?? [], `${service}: ${JSON.stringify(deployed)}`).toEqual([]);
        expect(variables.POWERTOOLS_SERVICE_NAME).toBe(service);
        if (ENV.transport in variables) expect(variables[ENV.transport]).toBe(transport);
      }
    });

    it('point user-api at the pool as token issuer, and auth-triggers at no pool at all', () => {
      const userApi =
        json().Resources[fnIds[SERVICE_NAMES.userApi] as string]?.Properties.Environment.Variables;
      const poolId = Object.keys(resourcesOf(t(), 'AWS::Cognito::UserPool'))[0] as string;
      expect(JSON.stringify(userApi.TOLLGATE_JWT_ISSUER)).toMatch(/https:\/\/cognito-idp\.eu-west-1\./);
      expect(JSON.stringify(userApi.TOLLGATE_JWT_ISSUER)).toContain(`"Ref":"${poolId}"`);
      expect(JSON.stringify(userApi.TOLLGATE_JWKS_URI)).toContain('/.well-known/jwks.json');
      const authTriggers = json().Resources[fnIds[SERVICE_NAMES.authTriggers] as string]?.Properties;
      expect(JSON.stringify(authTriggers)).not.toContain(poolId);
    });
  });

  describe('key API behind the load balancer', () => {
    it('forwards the listener to a target group whose only target is key-api', () => {
      const listeners = Object.values(resourcesOf(t(), 'AWS::ElasticLoadBalancingV2::Listener'));
      // With a certificate, the second is port 80's redirect (hardening.test.ts).
      expect(listeners).toHaveLength(https ? 2 : 1);
      const listener = json().Resources[appListenerId()]?.Properties as CfnProperties;
      expect(listener.DefaultActions).toHaveLength(1);
      const targetGroupId = listener.DefaultActions[0].TargetGroupArn.Ref;
      const targetGroup = json().Resources[targetGroupId]?.Properties;
      expect(targetGroup.TargetType).toBe('lambda');
      expect(targetGroup.Targets).toEqual([{ Id: { 'Fn::GetAtt': [fnIds[SERVICE_NAMES.keyApi], 'Arn'] } }]);
      if (https) {
        expect(listener).toMatchObject({
          Port: 443,
          Protocol: 'HTTPS',
          Certificates: [{ CertificateArn: CERTIFICATE }],
        });
      } else {
        expect(listener).toMatchObject({ Port: 80, Protocol: 'HTTP' });
      }
    });

    it('forwards the owner API paths, one rule each in order, to a target group whose only target is the owner API', () => {
      const listenerId = appListenerId();
      const listener: CfnProperties = json().Resources[listenerId]?.Properties;
      const keyApiTargetGroupId = listener.DefaultActions[0].TargetGroupArn.Ref;
      const rules = Object.values(resourcesOf(t(), 'AWS::ElasticLoadBalancingV2::ListenerRule'))
        .map((rule) => rule.Properties as CfnProperties)
        .sort((a, b) => a.Priority - b.Priority);
      expect(rules.map((rule) => [rule.Priority, rule.Conditions])).toEqual(
        (context.ownerApiPaths?.split(',') ?? EXAMPLE_API_PATHS).map((pattern, index) => [
          10 * (index + 1),
          [{ Field: 'path-pattern', PathPatternConfig: { Values: [pattern] } }],
        ]),
      );
      const ownerTargetGroupId = rules[0]?.Actions[0].TargetGroupArn.Ref;
      expect(ownerTargetGroupId).not.toBe(keyApiTargetGroupId);
      for (const rule of rules) {
        expect(rule.ListenerArn).toEqual({ Ref: listenerId });
        expect(rule.Actions).toEqual([{ Type: 'forward', TargetGroupArn: { Ref: ownerTargetGroupId } }]);
      }
      const ownerApiArn = { 'Fn::GetAtt': [fnIds[SERVICE_NAMES.exampleApi], 'Arn'] };
      const targetGroup = json().Resources[ownerTargetGroupId]?.Properties;
      expect(targetGroup).toMatchObject({ TargetType: 'lambda', HealthCheckEnabled: false });
      expect(targetGroup.Targets).toEqual([{ Id: ownerApiArn }]);
      // Registered only once the load balancer may invoke it (aws-cdk-lib's LambdaTarget).
      const permission = logicalIdOf(t(), 'AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        FunctionName: ownerApiArn,
        Principal: 'elasticloadbalancing.amazonaws.com',
      });
      expect(json().Resources[ownerTargetGroupId]).toMatchObject({ DependsOn: [permission] });
    });

    it('bundles the owner API (the example API by default) apart from the services', () => {
      const props = json().Resources[fnIds[SERVICE_NAMES.exampleApi] as string]?.Properties;
      expect(props.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAMES.exampleApi);
      const asset = (service: string) => json().Resources[fnIds[service] as string]?.Properties.Code.S3Key;
      expect(asset(SERVICE_NAMES.exampleApi)).not.toEqual(asset(SERVICE_NAMES.keyApi));
    });

    it('sits in a VPC of two public subnets without NAT gateways', () => {
      t().resourceCountIs('AWS::EC2::Subnet', 2);
      t().resourceCountIs('AWS::EC2::NatGateway', 0);
      t().hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internet-facing' });
    });
  });

  describe('usage transport', () => {
    it('encrypts every queue and refuses non-TLS access to it', () => {
      const queues = resourcesOf(t(), 'AWS::SQS::Queue');
      // The usage queue (SQS) or the redrive queue (Kinesis), and the dead-letter queue.
      expect(Object.keys(queues)).toHaveLength(2);
      const policies = Object.values(resourcesOf(t(), 'AWS::SQS::QueuePolicy'));
      for (const [id, queue] of Object.entries(queues)) {
        expect(queue.Properties?.SqsManagedSseEnabled, id).toBe(true);
        const policy = policies.find((p) => JSON.stringify(p.Properties?.Queues).includes(`"${id}"`));
        expect(policy?.Properties?.PolicyDocument, id).toMatchObject({
          Statement: expect.arrayContaining([
            expect.objectContaining({
              Effect: 'Deny',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        });
      }
    });

    it('gives every queue but the dead-letter queue a redrive to it, after redelivering until the late window nears', () => {
      for (const [id, queue] of Object.entries(resourcesOf(t(), 'AWS::SQS::Queue'))) {
        if (id === dlqId) continue;
        expect(queue.Properties?.RedrivePolicy).toEqual({
          deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] },
          maxReceiveCount: redelivery.queue.maxReceiveCount,
        });
        const properties = queue.Properties as CfnProperties;
        const visibility = properties.VisibilityTimeout as number;
        expect(visibility).toBe(redelivery.queue.visibilityTimeoutSeconds);
        // Never shorter than six times metering's timeout (AWS's advice).
        expect(visibility).toBeGreaterThanOrEqual(usageQueue.visibilityTimeoutSeconds);
        // Usage waits (one delivery per visibility timeout) until the late window minus the
        // redrive margin, not 15 minutes: 840 deliveries over 42 h with the 48 h default.
        const waitMs = visibility * 1000 * redelivery.queue.maxReceiveCount;
        expect(waitMs).toBeLessThanOrEqual(lateWindowMs - redelivery.redriveMarginMs);
        expect(waitMs).toBeGreaterThan(lateWindowMs - redelivery.redriveMarginMs - visibility * 1000);
        expect(redelivery.redriveMarginMs).toBeGreaterThanOrEqual(Math.min(6 * 3_600_000, lateWindowMs / 4));
        // Kept at least until the late window has closed on it.
        expect(properties.MessageRetentionPeriod * 1000).toBeGreaterThanOrEqual(lateWindowMs);
      }
    });

    it('keeps dead letters at least the late window (SQS keeps their first enqueue time)', () => {
      const dlq = json().Resources[dlqId]?.Properties as CfnProperties;
      expect(dlq.MessageRetentionPeriod).toBe(14 * 24 * 3600);
      expect(dlq.MessageRetentionPeriod * 1000).toBeGreaterThanOrEqual(lateWindowMs + 24 * 3_600_000);
    });

    it('configures metering with the late window the redelivery was derived from', () => {
      const variables = json().Resources[fnIds[SERVICE_NAMES.metering] as string]?.Properties.Environment
        .Variables as Record<string, unknown>;
      expect(variables[ENV.lateWindowMs]).toBe(String(lateWindowMs));
    });

    it('feeds metering through one mapping with partial batch responses (and the redrive queue on Kinesis)', () => {
      const all = Object.values(resourcesOf(t(), 'AWS::Lambda::EventSourceMapping')).map(
        (m) => m.Properties as CfnProperties,
      );
      expect(all).toHaveLength(transport === 'sqs' ? 1 : 2);
      for (const m of all) {
        expect(m.FunctionName).toEqual({ Ref: fnIds[SERVICE_NAMES.metering] });
        expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      }
      if (transport === 'kinesis') {
        const redriveId = logicalIdOf(t(), 'AWS::SQS::Queue', {
          QueueName: `${queueName(STAGE, usageQueue)}-redrive`,
        });
        expect(all.filter((m) => JSON.stringify(m.EventSourceArn).includes(`"${redriveId}"`))).toHaveLength(
          1,
        );
      }
      const mapping = all.find(
        (m) => m.StartingPosition !== undefined || transport === 'sqs',
      ) as CfnProperties;
      expect(mapping.FunctionName).toEqual({ Ref: fnIds[SERVICE_NAMES.metering] });
      expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      // Batches that grow with the backlog (up to 10,000), a short window when traffic is light:
      // the settings the local pollers run with too.
      const eventSource = transport === 'sqs' ? usageQueue.eventSource : usageStream.eventSource;
      expect(mapping.BatchSize).toBe(eventSource.batchSize);
      expect(mapping.BatchSize).toBeGreaterThanOrEqual(1000);
      expect(mapping.MaximumBatchingWindowInSeconds).toBe(eventSource.maxBatchingWindowSeconds);
      // SQS takes batches over 10 only with a window of at least 1 s.
      if (transport === 'sqs') expect(mapping.MaximumBatchingWindowInSeconds).toBeGreaterThanOrEqual(1);
      if (transport === 'sqs') {
        const queueId = logicalIdOf(t(), 'AWS::SQS::Queue', { QueueName: queueName(STAGE, usageQueue) });
        expect(mapping.EventSourceArn).toEqual({ 'Fn::GetAtt': [queueId, 'Arn'] });
        t().resourceCountIs('AWS::Kinesis::Stream', 0);
      } else {
        const streamId = Object.keys(resourcesOf(t(), 'AWS::Kinesis::Stream'))[0];
        expect(mapping).toMatchObject({
          EventSourceArn: { 'Fn::GetAtt': [streamId, 'Arn'] },
          StartingPosition: 'TRIM_HORIZON',
          BisectBatchOnFunctionError: true,
          // Sequence-number watermarks need one batch per shard at a time (docs/metering.md).
          ParallelizationFactor: 1,
          // Retried without a count until the record nears the late window: not skipped after 10.
          MaximumRetryAttempts: -1,
          MaximumRecordAgeInSeconds: redelivery.stream.maxRecordAgeSeconds,
          DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [dlqId, 'Arn'] } } },
        });
        expect(mapping.MaximumRecordAgeInSeconds * 1000).toBe(lateWindowMs - redelivery.redriveMarginMs);
        // The redrive margin left before the window refuses what was given up on.
        expect(lateWindowMs - mapping.MaximumRecordAgeInSeconds * 1000).toBeGreaterThanOrEqual(
          Math.min(6 * 3_600_000, lateWindowMs / 4),
        );
      }
    });

    it.runIf(transport === 'kinesis')('uses an encrypted stream sized from contracts/resources.ts', () => {
      t().hasResourceProperties('AWS::Kinesis::Stream', {
        ShardCount: usageStream.shardCount,
        RetentionPeriodHours: redelivery.stream.retentionHours,
        StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
      });
    });

    it('gives metering less time than the queue hides a batch', () => {
      const timeout = json().Resources[fnIds[SERVICE_NAMES.metering] as string]?.Properties.Timeout;
      expect(timeout * 6).toBeLessThanOrEqual(usageQueue.visibilityTimeoutSeconds);
    });

    it('sizes metering for a full batch: 10,000 records take ~5 s against DynamoDB Local, so 30 s and 1 GB', () => {
      const props = json().Resources[fnIds[SERVICE_NAMES.metering] as string]?.Properties;
      expect(props?.Timeout).toBeGreaterThanOrEqual(30);
      expect(props?.MemorySize).toBeGreaterThanOrEqual(1024);
    });

    it.runIf(transport === 'kinesis')('keeps the stream a day past the configured late window', () => {
      const stream = Object.values(resourcesOf(t(), 'AWS::Kinesis::Stream'))[0]?.Properties as CfnProperties;
      expect(stream.RetentionPeriodHours * 3_600_000).toBeGreaterThanOrEqual(lateWindowMs + 24 * 3_600_000);
      expect(stream.RetentionPeriodHours).toBe(Math.ceil(lateWindowMs / 3_600_000) + 24);
    });

    it('lets the redrive role read dead letters and send usage back only to metering, admitted by the Deny', () => {
      const roles = resourcesOf(t(), 'AWS::IAM::Role');
      const roleId = Object.keys(roles).find((id) => id.includes('RedriveRole')) as string;
      expect(roleId).toBeDefined();
      const target =
        transport === 'sqs'
          ? logicalIdOf(t(), 'AWS::SQS::Queue', { QueueName: queueName(STAGE, usageQueue) })
          : logicalIdOf(t(), 'AWS::SQS::Queue', { QueueName: `${queueName(STAGE, usageQueue)}-redrive` });
      const statements = Object.values(resourcesOf(t(), 'AWS::IAM::Policy'))
        .filter((policy) => JSON.stringify(policy.Properties?.Roles).includes(`"${roleId}"`))
        .flatMap(
          (policy) => (policy.Properties as CfnProperties).PolicyDocument.Statement as CfnProperties[],
        );
      expect(roles[roleId]?.Properties?.ManagedPolicyArns ?? []).toEqual([]);
      const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
      const granted = statements
        .filter((st) => st.Effect === 'Allow')
        .flatMap((st) =>
          list(st.Action as string | string[]).flatMap((action) =>
            list(st.Resource).map((resource) => ({ action, resource: JSON.stringify(resource) })),
          ),
        );
      const on = (id: string) => granted.filter((p) => p.resource.includes(`"${id}"`)).map((p) => p.action);
      expect(on(target)).toContain('sqs:SendMessage');
      expect(on(dlqId)).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
      expect(on(dlqId)).not.toContain('sqs:SendMessage');
      expect(on(tableIds.usage as string)).toEqual(['dynamodb:GetItem']);
      // Never PutRecord: a record put back on the stream would escape the watermarks.
      expect(granted.some((p) => p.action.startsWith('kinesis:Put'))).toBe(false);
      if (transport === 'kinesis') {
        const streamId = Object.keys(resourcesOf(t(), 'AWS::Kinesis::Stream'))[0] as string;
        expect(on(streamId)).toEqual(
          expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator']),
        );
      }
      // The queue's Deny admits the role beside the gates; on Kinesis the stream's does not.
      const denies = JSON.stringify(
        [
          ...Object.values(resourcesOf(t(), 'AWS::SQS::QueuePolicy')),
          ...Object.values(resourcesOf(t(), 'AWS::Kinesis::ResourcePolicy')),
        ].map((p) => p.Properties),
      );
      expect(denies).toContain(`"${roleId}"`);
      const targetPolicy = Object.values(resourcesOf(t(), 'AWS::SQS::QueuePolicy')).find((p) =>
        JSON.stringify(p.Properties?.Queues).includes(`"${target}"`),
      );
      const document = targetPolicy?.Properties?.PolicyDocument as CfnProperties;
      const deny = ((document?.Statement ?? []) as CfnProperties[]).find(
        (st) => st.Effect === 'Deny' && st.Action === 'sqs:SendMessage',
      );
      expect(JSON.stringify(deny?.Condition)).toContain(`"${roleId}"`);
      expect(t().findOutputs('UsageRedriveRoleArn')).not.toEqual({});
      expect(t().findOutputs('UsageRedriveQueueUrl')).not.toEqual({});
    });
  });

  describe('tables', () => {
    it('are on demand, encrypted, with point-in-time recovery, retained, as contracts/resources.ts defines them (plans included)', () => {
      const all = resourcesOf(t(), 'AWS::DynamoDB::Table');
      expect(Object.keys(all)).toHaveLength(tables.length);
      expect(tables.map((table) => table.id)).toContain('plans');
      for (const table of tables) {
        const resource = all[tableIds[table.id] as string];
        expect(resource?.DeletionPolicy).toBe('Retain');
        expect(resource?.Properties, table.id).toMatchObject({
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
          DeletionProtectionEnabled: true,
          KeySchema: [
            { AttributeName: table.partitionKey.name, KeyType: 'HASH' },
            ...(table.sortKey ? [{ AttributeName: table.sortKey.name, KeyType: 'RANGE' }] : []),
          ],
        });
        expect(resource?.Properties?.GlobalSecondaryIndexes ?? [], table.id).toHaveLength(
          table.globalSecondaryIndexes.length,
        );
        if (table.timeToLiveAttribute) {
          expect(resource?.Properties?.TimeToLiveSpecification).toEqual({
            AttributeName: table.timeToLiveAttribute,
            Enabled: true,
          });
        }
      }
    });

    it('give the keys table the KeyLookup index that projects what a key check reads', () => {
      t().hasResourceProperties('AWS::DynamoDB::Table', {
        TableName: tableName(STAGE, keysTable),
        GlobalSecondaryIndexes: [
          {
            IndexName: KEY_LOOKUP_INDEX,
            KeySchema: [{ AttributeName: 'keyHash', KeyType: 'HASH' }],
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['status', 'expiresAt'] },
          },
        ],
      });
    });
  });

  describe('least privilege', () => {
    /**
     * What a gate (key-api, the owner API) may do with the data: query the KeyLookup index, read an
     * account's standing and its plan (GetItem only: no Query or Scan of who the customers are), and
     * query the usage counters for a quota.
     */
    const gateGrants = (): Array<[string, string]> => [
      keyLookupGrant(),
      ['dynamodb:GetItem', JSON.stringify({ 'Fn::GetAtt': [tableIds.accounts, 'Arn'] })],
      ['dynamodb:GetItem', JSON.stringify({ 'Fn::GetAtt': [tableIds.plans, 'Arn'] })],
      ['dynamodb:Query', JSON.stringify({ 'Fn::GetAtt': [tableIds.usage, 'Arn'] })],
    ];

    /** The one write of a gate: its refusal summaries, naming refusal attributes only (test/infra/refusals.test.ts). */
    const refusalSummaryGrant = () => ({
      action: 'dynamodb:UpdateItem',
      resource: JSON.stringify({ 'Fn::GetAtt': [tableIds.usage, 'Arn'] }),
      condition: {
        'ForAllValues:StringLike': { 'dynamodb:Attributes': [...REFUSAL_SUMMARY_ATTRIBUTES] },
        StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
      },
    });

    it('lets key-api check keys, enforce plans, read day counters and publish, and nothing else: no write but its refusal summaries', () => {
      const granted = permissions(SERVICE_NAMES.keyApi).filter((p) => !p.action.startsWith('logs:'));
      expect(granted.filter((p) => WRITE_ACTIONS.includes(p.action))).toEqual([refusalSummaryGrant()]);
      const reads = granted.filter((p) => !WRITE_ACTIONS.includes(p.action));
      expect(reads.map((p) => [p.action, p.resource]).sort()).toEqual(
        [
          ...gateGrants(),
          // Its answers' usage figure: a key's day counter.
          ['dynamodb:GetItem', JSON.stringify({ 'Fn::GetAtt': [tableIds.usage, 'Arn'] })],
          publishGrant(),
        ].sort(),
      );
      expect(reads.every((p) => p.condition === undefined)).toBe(true);
    });

    it('lets the owner API check keys, enforce plans and publish, and nothing else: no write but its refusal summaries, no key or account listing', () => {
      const granted = permissions(SERVICE_NAMES.exampleApi).filter((p) => !p.action.startsWith('logs:'));
      expect(granted.filter((p) => WRITE_ACTIONS.includes(p.action))).toEqual([refusalSummaryGrant()]);
      const reads = granted.filter((p) => !WRITE_ACTIONS.includes(p.action));
      expect(reads.map((p) => [p.action, p.resource]).sort()).toEqual(
        [...gateGrants(), publishGrant()].sort(),
      );
      expect(reads.every((p) => p.condition === undefined)).toBe(true);
    });

    it('lets auth-triggers provision accounts and first keys only, in transactions', () => {
      const granted = permissions(SERVICE_NAMES.authTriggers).filter((p) => !p.action.startsWith('logs:'));
      expect(granted.some((p) => mentions(p, tableIds.usage as string))).toBe(false);
      const writes = granted.filter((p) => WRITE_ACTIONS.includes(p.action));
      expect(writes.map((p) => p.action).sort()).toEqual(
        [
          'dynamodb:ConditionCheckItem',
          'dynamodb:ConditionCheckItem',
          'dynamodb:PutItem',
          'dynamodb:PutItem',
        ].sort(),
      );
      for (const write of writes) {
        expect(write.condition).toEqual({
          'ForAnyValue:StringEquals': { 'dynamodb:EnclosingOperation': ['TransactWriteItems'] },
        });
      }
      expect(granted.filter((p) => !WRITE_ACTIONS.includes(p.action))).toEqual([
        {
          action: 'dynamodb:GetItem',
          resource: JSON.stringify({ 'Fn::GetAtt': [tableIds.accounts, 'Arn'] }),
        },
      ]);
    });

    it('lets user-api manage keys, read usage and administer plans and accounts, but never delete or write usage', () => {
      const granted = permissions(SERVICE_NAMES.userApi).filter((p) => !p.action.startsWith('logs:'));
      const on = (table: string, filter: (p: Permission) => boolean = () => true) =>
        granted
          .filter((p) => mentions(p, tableIds[table] as string) && filter(p))
          .map((p) => p.action)
          .sort();
      const inTransactions = (p: Permission) => p.condition !== undefined;
      const anyway = (p: Permission) => p.condition === undefined;
      expect(on('keys')).toEqual([
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]);
      // Reads; the admin routes' listing (Query of the AccountDirectory index, never a Scan of the
      // table) and plan assignment, suspension and resumption (UpdateItem); and, only inside
      // transactions, provisioning (PutItem) and the keysVersion bump of every key it adds (UpdateItem).
      expect(on('accounts', anyway)).toEqual(['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
      expect(granted).toContainEqual({
        action: 'dynamodb:Query',
        resource: JSON.stringify({
          'Fn::Join': [
            '',
            [{ 'Fn::GetAtt': [tableIds.accounts, 'Arn'] }, `/index/${ACCOUNT_DIRECTORY_INDEX}`],
          ],
        }),
      });
      expect(on('accounts', inTransactions)).toEqual(['dynamodb:PutItem', 'dynamodb:UpdateItem']);
      for (const write of granted.filter(inTransactions)) {
        expect(write.condition).toEqual({
          'ForAnyValue:StringEquals': { 'dynamodb:EnclosingOperation': ['TransactWriteItems'] },
        });
      }
      // The key limit and the admin routes read plans; only the admin routes list and save them.
      expect([...new Set(on('plans'))]).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan']);
      expect(on('plans', inTransactions)).toEqual([]);
      expect(on('usage')).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query']);
      expect(granted.some((p) => ['dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'].includes(p.action))).toBe(
        false,
      );
      expect(granted.every((p) => p.action.startsWith('dynamodb:'))).toBe(true);
    });

    it('gives the plans table to no one but the gates (GetItem) and user-api', () => {
      const readers = SERVICES.filter((service) =>
        permissions(service).some((p) => mentions(p, tableIds.plans as string)),
      );
      expect(readers.sort()).toEqual(
        [SERVICE_NAMES.keyApi, SERVICE_NAMES.exampleApi, SERVICE_NAMES.userApi].sort(),
      );
    });

    it("lets metering write usage (over SQS only transactionally or within the ledger's partitions), check provenance and dead-letter refused records", () => {
      const granted = permissions(SERVICE_NAMES.metering).filter((p) => !p.action.startsWith('logs:'));
      expect(granted.some((p) => mentions(p, tableIds.accounts as string))).toBe(false);
      // The provenance check: each event's key record, read by its own key; no index, no listing.
      expect(granted.filter((p) => mentions(p, tableIds.keys as string))).toEqual([
        {
          action: 'dynamodb:BatchGetItem',
          resource: JSON.stringify({ 'Fn::GetAtt': [tableIds.keys, 'Arn'] }),
        },
      ]);
      const dynamo = granted.filter(
        (p) => p.action.startsWith('dynamodb:') && !mentions(p, tableIds.keys as string),
      );
      // On Kinesis also the redrive queue's marks, transactionally as on SQS. Over SQS the ledger's
      // plain requests besides, each held to its partitions (test/infra/sqs-ledger.test.ts).
      expect(dynamo.map((p) => p.action).sort()).toEqual(
        transport === 'sqs'
          ? [
              'dynamodb:BatchGetItem',
              'dynamodb:GetItem',
              'dynamodb:PutItem',
              'dynamodb:PutItem',
              'dynamodb:UpdateItem',
              'dynamodb:UpdateItem',
            ]
          : ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:UpdateItem'],
      );
      for (const write of dynamo) {
        expect(mentions(write, tableIds.usage as string)).toBe(true);
        if (write.action === 'dynamodb:PutItem') expect(write.condition).toBeDefined();
        if (transport === 'sqs') expect(write.condition, write.action).toBeDefined();
      }
      expect(granted).toContainEqual({
        action: 'sqs:SendMessage',
        resource: JSON.stringify({ 'Fn::GetAtt': [dlqId, 'Arn'] }),
      });
    });

    it('sends no quota alerts without alertFromAddress: no owner or plan reads, no email, none of their variables', () => {
      const granted = permissions(SERVICE_NAMES.metering);
      expect(granted.some((p) => mentions(p, tableIds.plans as string))).toBe(false);
      expect(granted.some((p) => p.action.startsWith('ses:'))).toBe(false);
      const variables =
        json().Resources[fnIds[SERVICE_NAMES.metering] as string]?.Properties.Environment.Variables;
      for (const name of [ENV.accountsTable, ENV.plansTable, ENV.alertFromAddress]) {
        expect(variables[name], name).toBeUndefined();
      }
    });

    it('scopes every function to named resources (the only wildcard: its own log streams)', () => {
      for (const service of SERVICES) {
        for (const permission of permissions(service)) {
          expect(permission.action, service).not.toContain('*');
          expect(permission.resource === '"*"', `${service} ${permission.action}`).toBe(false);
          if (permission.resource.includes('*')) expect(permission.resource).toContain(':log-stream:*');
        }
      }
    });
  });

  describe('account owners', () => {
    it('wires the PostConfirmation trigger to auth-triggers', () => {
      t().hasResourceProperties('AWS::Cognito::UserPool', {
        LambdaConfig: { PostConfirmation: { 'Fn::GetAtt': [fnIds[SERVICE_NAMES.authTriggers], 'Arn'] } },
      });
      t().hasResourceProperties('AWS::Lambda::Permission', {
        FunctionName: { 'Fn::GetAtt': [fnIds[SERVICE_NAMES.authTriggers], 'Arn'] },
        Principal: 'cognito-idp.amazonaws.com',
      });
    });

    it('signs users up by email with the password policy of contracts/resources.ts', () => {
      const policy = userPool.passwordPolicy;
      t().hasResourceProperties('AWS::Cognito::UserPool', {
        UsernameAttributes: ['email'],
        AutoVerifiedAttributes: ['email'],
        AdminCreateUserConfig: { AllowAdminCreateUserOnly: false },
        Policies: {
          PasswordPolicy: Match.objectLike({
            MinimumLength: policy.minimumLength,
            RequireLowercase: policy.requireLowercase,
            RequireUppercase: policy.requireUppercase,
            RequireNumbers: policy.requireNumbers,
            RequireSymbols: policy.requireSymbols,
          }),
        },
        AccountRecoverySetting: { RecoveryMechanisms: [{ Name: 'verified_email', Priority: 1 }] },
      });
      t().hasResourceProperties('AWS::Cognito::UserPoolClient', {
        GenerateSecret: false,
        ExplicitAuthFlows: Match.arrayWith(['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_USER_SRP_AUTH']),
      });
    });

    /** The user API's methods, and the one resource served without a token (its OpenAPI document). */
    const userApiMethods = () => {
      const methods = Object.values(resourcesOf(t(), 'AWS::ApiGateway::Method')).map(
        (m) => m.Properties as CfnProperties,
      );
      const openApiResource = logicalIdOf(t(), 'AWS::ApiGateway::Resource', { PathPart: 'openapi.json' });
      const isOpenApi = (m: CfnProperties) =>
        m.HttpMethod !== 'OPTIONS' && m.ResourceId?.Ref === openApiResource;
      return { methods, openApi: methods.filter(isOpenApi), others: methods.filter((m) => !isOpenApi(m)) };
    };

    it('serves GET /openapi.json without a token, straight from user-api', () => {
      const { openApi } = userApiMethods();
      expect(openApi).toHaveLength(1);
      const [method] = openApi;
      expect(method.HttpMethod).toBe('GET');
      expect(method.AuthorizationType).toBe('NONE');
      expect(method.AuthorizerId).toBeUndefined();
      expect(method.Integration.Type).toBe('AWS_PROXY');
      expect(JSON.stringify(method.Integration.Uri)).toContain(fnIds[SERVICE_NAMES.userApi]);
      // A direct child of the root: `<UserApiUrl>openapi.json`.
      const resource = Object.values(resourcesOf(t(), 'AWS::ApiGateway::Resource')).find(
        (r) => r.Properties?.PathPart === 'openapi.json',
      );
      expect(resource?.Properties?.ParentId).toEqual({
        'Fn::GetAtt': [Object.keys(resourcesOf(t(), 'AWS::ApiGateway::RestApi'))[0], 'RootResourceId'],
      });
    });

    it('puts every other user API route behind the Cognito authorizer, except CORS preflights', () => {
      const authorizerId = Object.keys(resourcesOf(t(), 'AWS::ApiGateway::Authorizer'))[0];
      t().hasResourceProperties('AWS::ApiGateway::Authorizer', { Type: 'COGNITO_USER_POOLS' });
      const { methods, others } = userApiMethods();
      const routes = others.filter((m) => m.HttpMethod !== 'OPTIONS');
      expect(routes).toHaveLength(18);
      for (const method of routes) {
        expect(method.AuthorizationType).toBe('COGNITO_USER_POOLS');
        expect(method.AuthorizerId).toEqual({ Ref: authorizerId });
        expect(method.Integration.Type).toBe('AWS_PROXY');
        expect(JSON.stringify(method.Integration.Uri)).toContain(fnIds[SERVICE_NAMES.userApi]);
      }
      for (const preflight of methods.filter((m) => m.HttpMethod === 'OPTIONS')) {
        expect(preflight.Integration.Type).toBe('MOCK');
      }
    });

    /** Every method's path, e.g. `PUT /admin/plans/{planId}`, from the resources' parents. */
    const userApiRoutes = () => {
      const resources = resourcesOf(t(), 'AWS::ApiGateway::Resource');
      const pathOf = (id: string): string => {
        const props = resources[id]?.Properties as CfnProperties;
        const parent = props.ParentId.Ref as string | undefined;
        return `${parent ? pathOf(parent) : ''}/${props.PathPart}`;
      };
      return userApiMethods()
        .others.filter((m) => m.HttpMethod !== 'OPTIONS')
        .map((m) => ({
          route: `${m.HttpMethod} ${m.ResourceId?.Ref ? pathOf(m.ResourceId.Ref) : '/'}`,
          method: m,
        }));
    };

    it("routes the admin API to user-api behind the Cognito authorizer (the admins group is user-api's check)", () => {
      const authorizerId = Object.keys(resourcesOf(t(), 'AWS::ApiGateway::Authorizer'))[0];
      const admin = userApiRoutes().filter(({ route }) => route.includes(' /admin'));
      // Exactly these (no `{proxy+}`, no ANY): any other /admin path is refused by API Gateway
      // without invoking user-api.
      expect(admin.map(({ route }) => route).sort()).toEqual(
        [
          'GET /admin/accounts',
          'PUT /admin/accounts/{accountId}/plan',
          'GET /admin/accounts/{accountId}/usage',
          'POST /admin/accounts/{accountId}/suspend',
          'POST /admin/accounts/{accountId}/resume',
          'GET /admin/plans',
          'PUT /admin/plans/{planId}',
          'GET /admin/usage/top',
          'GET /admin/usage/accounts',
        ].sort(),
      );
      for (const { route, method } of admin) {
        expect(method.AuthorizationType, route).toBe('COGNITO_USER_POOLS');
        expect(method.AuthorizerId, route).toEqual({ Ref: authorizerId });
        expect(method.Integration.Type, route).toBe('AWS_PROXY');
        expect(JSON.stringify(method.Integration.Uri), route).toContain(fnIds[SERVICE_NAMES.userApi]);
      }
    });

    it("routes the owner's own plan, GET /me/plan (the page's plan display), to user-api behind the authorizer", () => {
      const plan = userApiRoutes().find(({ route }) => route === 'GET /me/plan');
      expect(plan?.method.AuthorizationType).toBe('COGNITO_USER_POOLS');
      expect(JSON.stringify(plan?.method.Integration.Uri)).toContain(fnIds[SERVICE_NAMES.userApi]);
    });

    it('lets browsers send PUT (the admin routes) through the CORS preflight', () => {
      const preflights = userApiMethods().methods.filter((m) => m.HttpMethod === 'OPTIONS');
      expect(preflights.length).toBeGreaterThan(0);
      for (const preflight of preflights) {
        const headers = preflight.Integration.IntegrationResponses[0].ResponseParameters;
        expect(headers['method.response.header.Access-Control-Allow-Methods']).toContain('PUT');
      }
    });

    it(`has the group of the owner's admins, "${ADMIN_GROUP}", in the user pool, kept with it`, () => {
      const groups = resourcesOf(t(), 'AWS::Cognito::UserPoolGroup');
      expect(Object.keys(groups)).toHaveLength(1);
      const poolId = Object.keys(resourcesOf(t(), 'AWS::Cognito::UserPool'))[0];
      const [group] = Object.values(groups);
      expect(group?.Properties).toMatchObject({ GroupName: ADMIN_GROUP, UserPoolId: { Ref: poolId } });
      expect(String(group?.Properties?.Description)).toMatch(/admin/);
      // No IAM role: membership only puts the group in the ID token, for user-api to check.
      expect(group?.Properties?.RoleArn).toBeUndefined();
      expect(group?.DeletionPolicy).toBe('Retain');
    });
  });

  describe('web page', () => {
    it('serves a private, encrypted bucket through CloudFront with Origin Access Control', () => {
      for (const bucket of Object.values(resourcesOf(t(), 'AWS::S3::Bucket'))) {
        expect(bucket.Properties?.PublicAccessBlockConfiguration).toEqual({
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        });
        expect(bucket.Properties?.BucketEncryption).toBeDefined();
      }
      t().resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
      t().hasResourceProperties('AWS::CloudFront::Distribution', {
        DistributionConfig: Match.objectLike({
          Origins: [Match.objectLike({ OriginAccessControlId: Match.anyValue() })],
          DefaultCacheBehavior: Match.objectLike({ ViewerProtocolPolicy: 'redirect-to-https' }),
        }),
      });
    });

    it(`${webAssets ? 'deploys' : 'does not deploy'} the page when it was ${webAssets ? '' : 'not '}built`, () => {
      t().resourceCountIs('Custom::CDKBucketDeployment', webAssets ? 1 : 0);
      if (webAssets) {
        // config.json is filled in at deploy time from these references (the pool, its client,
        // the user API and the ALB): the page finds the stack without being rebuilt.
        const deployment = Object.values(resourcesOf(t(), 'Custom::CDKBucketDeployment'))[0];
        const markers = JSON.stringify(deployment?.Properties?.SourceMarkers);
        for (const type of [
          'AWS::Cognito::UserPool',
          'AWS::Cognito::UserPoolClient',
          'AWS::ApiGateway::RestApi',
        ]) {
          expect(markers, type).toContain(`"${Object.keys(resourcesOf(t(), type))[0]}"`);
        }
        expect(markers).toContain('LoadBalancer');
      }
    });

    it('publishes the outputs the web page and operators read', () => {
      const outputs = Object.keys(t().findOutputs('*'));
      expect(outputs).toEqual(
        expect.arrayContaining([
          'Region',
          'KeyApiUrl',
          'UserApiUrl',
          'UserPoolId',
          'UserPoolClientId',
          'WebUrl',
        ]),
      );
      const keyApiUrl: CfnProperties = t().findOutputs('KeyApiUrl').KeyApiUrl;
      expect(keyApiUrl.Value['Fn::Join'][1][0]).toBe(https ? 'https://' : 'http://');
    });
  });

  describe('operations', () => {
    it('charts exactly the custom metrics the services publish, by service', () => {
      const dashboards = Object.values(resourcesOf(t(), 'AWS::CloudWatch::Dashboard'));
      expect(dashboards).toHaveLength(1);
      const body = dashboardBody(dashboards[0]?.Properties?.DashboardBody);
      const custom = metricRows(body).filter((row) => row[0] === METRICS_NAMESPACE);
      const names = new Set(custom.map((row) => row[1] as string));
      expect([...names].filter((name) => !SERVICE_METRIC_NAMES.has(name))).toEqual([]);
      expect([...SERVICE_METRIC_NAMES].filter((name) => !names.has(name))).toEqual([]);
      // Powertools publishes with one dimension, `service`: the service that emits the metric (one
      // name, InternalErrors, is published by key-api and user-api alike). The owner API's gate
      // publishes key-api's names under its own service name.
      const publishers = (name: string) => [
        ...(namesIn(KeyApiMetric).includes(name) ? [SERVICE_NAMES.keyApi, SERVICE_NAMES.exampleApi] : []),
        ...([...namesIn(MeteringMetric), ...namesIn(MeteringRefusedMetric)].includes(name)
          ? [SERVICE_NAMES.metering]
          : []),
        ...(namesIn(UserApiMetric).includes(name) ? [SERVICE_NAMES.userApi] : []),
      ];
      for (const row of custom) {
        expect(row[2], String(row[1])).toBe('service');
        expect(publishers(row[1] as string), String(row[1])).toContain(row[3]);
      }
    });

    it('charts the AWS metrics an operator needs', () => {
      const dashboard = Object.values(resourcesOf(t(), 'AWS::CloudWatch::Dashboard'))[0];
      const names = new Set(
        metricRows(dashboardBody(dashboard?.Properties?.DashboardBody)).map((row) => row[1]),
      );
      const expected = [
        'Duration',
        'Errors',
        'Throttles',
        'HTTPCode_ELB_4XX_Count',
        'HTTPCode_ELB_5XX_Count',
        'HTTPCode_Target_5XX_Count',
        'ReadThrottleEvents',
        'WriteThrottleEvents',
        'ApproximateNumberOfMessagesVisible',
        ...(transport === 'sqs' ? ['ApproximateAgeOfOldestMessage'] : ['IteratorAge']),
      ];
      expect(expected.filter((name) => !names.has(name))).toEqual([]);
    });

    it("alarms on dead letters, backlog age, consumer errors, each API's 5xx rate, usage lag, publish failures, unmetered requests, internal errors and refused provenance", () => {
      const alarms = Object.values(resourcesOf(t(), 'AWS::CloudWatch::Alarm')).map(
        (a) => a.Properties as CfnProperties,
      );
      const byName = (suffix: string) => alarms.find((a) => a.AlarmName === `tollgate-${STAGE}-${suffix}`);
      expect(alarms).toHaveLength(13);
      // Forged or replayed usage: any event whose key is unknown or another account's.
      const provenance = byName('usage-provenance-refusals');
      expect(provenance).toMatchObject({
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 1,
      });
      expect(
        provenance.Metrics.filter((q: CfnProperties) => q.MetricStat).map(
          (q: CfnProperties) => q.MetricStat.Metric.MetricName,
        ),
      ).toEqual([MeteringRefusedMetric.unknown_key, MeteringRefusedMetric.account_mismatch]);
      expect(alarmMetric(byName('usage-dead-letters'))).toEqual({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }],
      });
      expect(byName('usage-dead-letters').Threshold).toBe(1);
      expect(alarmMetric(byName('usage-backlog-age'))).toMatchObject(
        transport === 'sqs'
          ? { Namespace: 'AWS/SQS', MetricName: 'ApproximateAgeOfOldestMessage' }
          : {
              Namespace: 'AWS/Lambda',
              MetricName: 'IteratorAge',
              Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnIds[SERVICE_NAMES.metering] } }],
            },
      );
      expect(alarmMetric(byName('metering-errors'))).toEqual({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnIds[SERVICE_NAMES.metering] } }],
      });
      // Each API's 5xx rate from its own target group only, numerator and denominator: the owner
      // API's requests neither dilute nor inflate key-api's.
      for (const service of [SERVICE_NAMES.keyApi, SERVICE_NAMES.exampleApi]) {
        const fiveXx = byName(`${service}-5xx`);
        expect(fiveXx, service).toMatchObject({
          Threshold: 1,
          ComparisonOperator: 'GreaterThanThreshold',
          EvaluationPeriods: 2,
          TreatMissingData: 'notBreaching',
        });
        const queries: CfnProperties[] = fiveXx.Metrics;
        expect(queries.filter((q) => q.ReturnData !== false).map((q) => q.Expression)).toEqual([
          'IF(requests > 0, 100 * (target5xx + userErrors + internalErrors) / requests, 0)',
        ]);
        const stats = queries.filter((q) => q.MetricStat).map((q) => q.MetricStat);
        expect(Object.fromEntries(stats.map((stat) => [stat.Metric.MetricName, stat.Stat]))).toEqual({
          RequestCount: 'Sum',
          HTTPCode_Target_5XX_Count: 'Sum',
          LambdaUserError: 'Sum',
          LambdaInternalError: 'Sum',
        });
        for (const stat of stats) {
          expect(stat.Period, service).toBe(300);
          expect(stat.Metric.Namespace).toBe('AWS/ApplicationELB');
          expect(stat.Metric.Dimensions, `${service} ${stat.Metric.MetricName}`).toContainEqual({
            Name: 'TargetGroup',
            Value: { 'Fn::GetAtt': [targetGroupOf(service), 'TargetGroupFullName'] },
          });
        }
      }
      expect(alarmMetric(byName('usage-lag'))).toEqual({
        Namespace: METRICS_NAMESPACE,
        MetricName: MeteringMetric.usageLag,
        Dimensions: [{ Name: 'service', Value: SERVICE_NAMES.metering }],
      });
      expect(alarmMetric(byName('usage-publish-failures'))).toEqual({
        Namespace: METRICS_NAMESPACE,
        MetricName: KeyApiMetric.publishFailures,
        Dimensions: [{ Name: 'service', Value: SERVICE_NAMES.keyApi }],
      });
      expect(byName('usage-publish-failures').Threshold).toBe(1);
      // The owner API's gate: the same failure metrics under its own service name, alarmed as key-api's.
      for (const [suffix, metricName] of [
        ['usage-publish-failures', KeyApiMetric.publishFailures],
        ['unmetered-requests', KeyApiMetric.unmetered],
      ]) {
        const alarm = byName(`${SERVICE_NAMES.exampleApi}-${suffix}`);
        expect(alarmMetric(alarm)).toEqual({
          Namespace: METRICS_NAMESPACE,
          MetricName: metricName,
          Dimensions: [{ Name: 'service', Value: SERVICE_NAMES.exampleApi }],
        });
        expect(alarm).toMatchObject({
          Statistic: 'Sum',
          Period: 300,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
          AlarmActions: byName('usage-publish-failures').AlarmActions,
          OKActions: byName('usage-publish-failures').OKActions,
        });
      }
      for (const alarm of alarms) expect(alarm.AlarmActions).toHaveLength(1);
    });
  });
});

/** The one metric an alarm watches, whether CloudFormation has it inline or as a metric query. */
function alarmMetric(alarm: CfnProperties): {
  Namespace: string;
  MetricName: string;
  Dimensions?: unknown[];
} {
  const metric = alarm.MetricName ? alarm : alarm.Metrics?.[0]?.MetricStat?.Metric;
  return { Namespace: metric.Namespace, MetricName: metric.MetricName, Dimensions: metric.Dimensions };
}

/** The dashboard body as JSON, with every CloudFormation reference replaced by a placeholder. */
function dashboardBody(body: unknown): { widgets: Array<{ properties: { metrics?: unknown[][] } }> } {
  const flatten = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    if (join) return join[1].map(flatten).join(join[0]);
    return 'REF';
  };
  return JSON.parse(flatten(body));
}

/** Metric rows (`[namespace, name, dimension, value, …, options]`) of every widget. */
function metricRows(body: ReturnType<typeof dashboardBody>): unknown[][] {
  return body.widgets
    .flatMap((widget) => widget.properties.metrics ?? [])
    .filter((row) => typeof row[0] === 'string' && typeof row[1] === 'string');
}
