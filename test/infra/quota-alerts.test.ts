import type { Logger } from '@aws-lambda-powertools/logger';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, meteringConfigSchema } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import type { Plan } from '../../contracts/plans';
import {
  ALERT_ID_TAG,
  ALERT_MARK_PREFIX,
  LEDGER_BACKSTOP_EVENT,
  queueName,
  tableName,
  tables,
  usageQueue,
} from '../../contracts/resources';
import { LEDGER_PARTITIONS } from '../../infra/cdk/constructs/data-tables';
import type { PlanStore } from '../../services/accounts/plan-store';
import { parseAlertsEvent } from '../../services/metering/alert-events';
import { QuotaAlerts } from '../../services/metering/quota-alerts';
import { accountPartition, eventMark } from '../../services/usage/counter-keys';
import type { UsageReader } from '../../services/usage/usage-reader';
import { logicalIdOf, permissionsOf, type Synthesized, synthesize } from './synth';

// Quota alerts on AWS (`-c alertFromAddress=…`): metering reads an account's owner and plan, its
// usage this period and the owner's current address in the user pool, keeps the alerts' outbox
// (alert items only), and sends through SES from that address only, through a configuration set
// whose send events come back to it; a rule runs its outbox schedule every minute. Without the
// setting it gets none of it (tollgate-stack.test.ts).

const STAGE = 'test';
const REGION = 'eu-west-1';
const FROM = 'alerts@mail.example.com';

/** Writes and reads of alert items in the usage table: only of items whose partition key is an alert's. */
const ALERT_MARKS_ONLY = {
  'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${ALERT_MARK_PREFIX}*`] },
};
const LEDGER_ONLY = {
  'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${LEDGER_PARTITIONS.ledger}*`] },
};
const LEDGER_AND_COUNTERS = {
  'ForAllValues:StringLike': {
    'dynamodb:LeadingKeys': [`${LEDGER_PARTITIONS.ledger}*`, `${LEDGER_PARTITIONS.counters}*`],
  },
};
const TRANSACTIONS_ONLY = {
  'ForAnyValue:StringEquals': { 'dynamodb:EnclosingOperation': ['TransactWriteItems'] },
};

/** An SES identity's ARN in the stack's region and account (the partition follows from the region). */
const sesIdentity = (name: string) =>
  JSON.stringify({
    'Fn::Join': ['', [`arn:aws:ses:${REGION}:`, { Ref: 'AWS::AccountId' }, `:identity/${name}`]],
  });

describe.each(['sqs', 'kinesis'] as const)(
  'quota alerts with alertFromAddress, transport=%s',
  (transport) => {
    let synth: Synthesized;
    let meteringId: string;
    let tableIds: Record<string, string>;

    const arn = (table: string) => JSON.stringify({ 'Fn::GetAtt': [tableIds[table], 'Arn'] });
    const granted = () =>
      permissionsOf(synth.template, meteringId).filter((p) => !p.action.startsWith('logs:'));
    const environment = (): Record<string, unknown> =>
      synth.template.toJSON().Resources[meteringId].Properties.Environment.Variables;
    const onlyId = (type: string) => {
      const ids = Object.keys(synth.template.findResources(type));
      expect(ids).toHaveLength(1);
      return ids[0] as string;
    };
    const configurationSetId = () => onlyId('AWS::SES::ConfigurationSet');
    const userPoolId = () => onlyId('AWS::Cognito::UserPool');
    const rules = () =>
      Object.entries(synth.template.findResources('AWS::Events::Rule')) as Array<
        [string, { Properties: Record<string, unknown> }]
      >;

    beforeAll(() => {
      synth = synthesize({ stage: STAGE, transport, region: REGION, alertFromAddress: FROM });
      if (synth.violations.length > 0) return;
      meteringId = logicalIdOf(synth.template, 'AWS::Lambda::Function', {
        FunctionName: `tollgate-${STAGE}-${SERVICE_NAMES.metering}`,
      });
      tableIds = Object.fromEntries(
        tables.map((table) => [
          table.id,
          logicalIdOf(synth.template, 'AWS::DynamoDB::Table', { TableName: tableName(STAGE, table) }),
        ]),
      );
    });
    afterAll(() => synth?.cleanUp());

    it('synthesizes with no unacknowledged cdk-nag finding', () => {
      expect(synth.violations).toEqual([]);
    });

    it('turns alerts on in metering: the accounts and plans tables, the sender, its configuration set and the user pool, in an environment its schema accepts', () => {
      const variables = environment();
      expect(variables[ENV.accountsTable]).toEqual({ Ref: tableIds.accounts });
      expect(variables[ENV.plansTable]).toEqual({ Ref: tableIds.plans });
      expect(variables[ENV.alertFromAddress]).toBe(FROM);
      expect(variables[ENV.alertConfigurationSet]).toEqual({ Ref: configurationSetId() });
      expect(variables[ENV.alertUserPoolId]).toEqual({ Ref: userPoolId() });
      // The keys table is the provenance check's (BatchGetItem of key records), not the alerts'.
      expect(variables[ENV.keysTable]).toEqual({ Ref: tableIds.keys });
      // As deployed (references replaced by values of their shape), all three are there, so
      // services/metering/compose.ts builds the alerts.
      // A queue's Ref is its URL: the dead-letter queue's, and the usage queue's (the ledger's ticks).
      const queueIds = [true, ...(transport === 'sqs' ? [false] : [])].map((deadLetter) =>
        logicalIdOf(synth.template, 'AWS::SQS::Queue', {
          QueueName: queueName(STAGE, usageQueue, deadLetter),
        }),
      );
      const deployed = Object.fromEntries(
        Object.entries(variables)
          .filter(([name]) => name.startsWith('TOLLGATE_'))
          .map(([name, value]) => {
            if (typeof value === 'string') return [name, value];
            const ref = (value as { Ref?: string }).Ref;
            if (ref !== undefined && queueIds.includes(ref))
              return [name, `https://sqs.${REGION}.amazonaws.com/123456789012/${ref}`];
            if (ref !== undefined) return [name, ref.toLowerCase()];
            throw new Error(`unexpected value of ${name}: ${JSON.stringify(value)}`);
          }),
      );
      const parsed = meteringConfigSchema.safeParse(deployed);
      expect(parsed.error?.issues ?? []).toEqual([]);
      expect(parsed.data?.[ENV.accountsTable]).toBeDefined();
      expect(parsed.data?.[ENV.plansTable]).toBeDefined();
      expect(parsed.data?.[ENV.alertFromAddress]).toBe(FROM);
      expect(parsed.data?.[ENV.alertConfigurationSet]).toBeDefined();
      expect(parsed.data?.[ENV.alertUserPoolId]).toBeDefined();
    });

    it('lets metering read owners and plans by GetItem only, query usage, and write or read only alert items outside its counting', () => {
      const dynamo = granted()
        .filter((p) => p.action.startsWith('dynamodb:'))
        .map((p) => JSON.stringify([p.action, p.resource, p.condition ?? null]))
        .sort();
      const counting =
        transport === 'sqs'
          ? [
              ['dynamodb:PutItem', arn('usage'), TRANSACTIONS_ONLY],
              ['dynamodb:UpdateItem', arn('usage'), TRANSACTIONS_ONLY],
              // The SQS ledger (test/infra/sqs-ledger.test.ts).
              ['dynamodb:PutItem', arn('usage'), LEDGER_ONLY],
              ['dynamodb:GetItem', arn('usage'), LEDGER_ONLY],
              ['dynamodb:BatchGetItem', arn('usage'), LEDGER_ONLY],
              ['dynamodb:UpdateItem', arn('usage'), LEDGER_AND_COUNTERS],
            ]
          : [
              ['dynamodb:UpdateItem', arn('usage'), null],
              ['dynamodb:GetItem', arn('usage'), null],
              // The account-period items, written in a transaction with the counters.
              ['dynamodb:PutItem', arn('usage'), TRANSACTIONS_ONLY],
              ['dynamodb:UpdateItem', arn('usage'), TRANSACTIONS_ONLY],
            ];
      const alerts = [
        ['dynamodb:GetItem', arn('accounts'), null],
        ['dynamodb:GetItem', arn('plans'), null],
        ['dynamodb:Query', arn('usage'), null],
        ['dynamodb:PutItem', arn('usage'), ALERT_MARKS_ONLY],
        ['dynamodb:UpdateItem', arn('usage'), ALERT_MARKS_ONLY],
        ['dynamodb:DeleteItem', arn('usage'), ALERT_MARKS_ONLY],
        ['dynamodb:GetItem', arn('usage'), ALERT_MARKS_ONLY],
      ];
      const provenance = [['dynamodb:BatchGetItem', arn('keys'), null]];
      expect(dynamo).toEqual(
        [...counting, ...alerts, ...provenance].map((grant) => JSON.stringify(grant)).sort(),
      );
    });

    it("lets metering send email only from the sender address, through the address's or its domain's SES identity and its configuration set", () => {
      const ses = granted().filter((p) => p.action.startsWith('ses:'));
      const configurationSet = JSON.stringify({
        'Fn::Join': [
          '',
          [
            `arn:aws:ses:${REGION}:`,
            { Ref: 'AWS::AccountId' },
            ':configuration-set/',
            { Ref: configurationSetId() },
          ],
        ],
      });
      expect(ses.map((p) => p.resource).sort()).toEqual(
        [sesIdentity(FROM), sesIdentity('mail.example.com'), configurationSet].sort(),
      );
      for (const permission of ses) {
        expect(permission.action).toBe('ses:SendEmail');
        expect(permission.condition).toEqual({ StringEquals: { 'ses:FromAddress': FROM } });
      }
      // Nothing else beyond the data, the transport, the dead letters and the owner's address.
      expect(
        granted().filter(
          (p) => !['dynamodb:', 'ses:', 'sqs:', 'kinesis:'].some((s) => p.action.startsWith(s)),
        ),
      ).toEqual([
        {
          action: 'cognito-idp:AdminGetUser',
          resource: JSON.stringify({ 'Fn::GetAtt': [userPoolId(), 'Arn'] }),
        },
      ]);
    });

    it("publishes SES's send events of the configuration set to the default bus, and routes those of alert emails to metering", () => {
      const destinations = Object.values(
        synth.template.findResources('AWS::SES::ConfigurationSetEventDestination'),
      ) as Array<{
        Properties: { ConfigurationSetName: unknown; EventDestination: Record<string, unknown> };
      }>;
      expect(destinations).toHaveLength(1);
      const destination = destinations[0]?.Properties;
      expect(destination?.ConfigurationSetName).toEqual({ Ref: configurationSetId() });
      expect(destination?.EventDestination.MatchingEventTypes).toEqual(['send']);
      expect(JSON.stringify(destination?.EventDestination.EventBridgeDestination)).toContain(
        ':event-bus/default',
      );

      const delivered = rules().filter(([, r]) => r.Properties.EventPattern !== undefined);
      expect(delivered).toHaveLength(1);
      const [ruleId, rule] = delivered[0] as [string, { Properties: Record<string, unknown> }];
      expect(rule.Properties.EventPattern).toEqual({
        source: ['aws.ses'],
        'detail-type': ['Email Sent'],
        detail: {
          mail: {
            tags: {
              [ALERT_ID_TAG]: [{ exists: true }],
              'ses:configuration-set': [{ Ref: configurationSetId() }],
            },
          },
        },
      });
      expect(rule.Properties.Targets).toEqual([
        expect.objectContaining({ Arn: { 'Fn::GetAtt': [meteringId, 'Arn'] } }),
      ]);
      expect(invokedBy(ruleId)).toBe(true);
      // What such an event looks like reaches the outbox as a delivery of that alert.
      expect(
        parseAlertsEvent({
          source: 'aws.ses',
          'detail-type': 'Email Sent',
          detail: {
            eventType: 'Send',
            mail: { messageId: 'm-1', tags: { [ALERT_ID_TAG]: ['80-day-20260310-a'] } },
          },
        }),
      ).toEqual({ kind: 'delivered', alertId: '80-day-20260310-a', messageId: 'm-1' });
    });

    it('runs the outbox schedule in metering every minute, without retries of a missed run', () => {
      // The SQS ledger's backstop runs on a schedule of its own, with an input (sqs-ledger.test.ts).
      const scheduled = rules().filter(
        ([, r]) =>
          r.Properties.ScheduleExpression !== undefined &&
          !JSON.stringify(r.Properties.Targets).includes(LEDGER_BACKSTOP_EVENT.tollgate),
      );
      expect(scheduled).toHaveLength(1);
      const [ruleId, rule] = scheduled[0] as [string, { Properties: Record<string, unknown> }];
      expect(rule.Properties.ScheduleExpression).toBe('rate(1 minute)');
      expect(rule.Properties.State).toBe('ENABLED');
      expect(rule.Properties.Targets).toEqual([
        expect.objectContaining({
          Arn: { 'Fn::GetAtt': [meteringId, 'Arn'] },
          RetryPolicy: { MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 0 },
        }),
      ]);
      expect(invokedBy(ruleId)).toBe(true);
      expect(
        parseAlertsEvent({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }),
      ).toEqual({
        kind: 'schedule',
      });
    });

    /** EventBridge may invoke metering for this rule, and only for it. */
    function invokedBy(ruleId: string): boolean {
      const permissions = Object.values(synth.template.findResources('AWS::Lambda::Permission')) as Array<{
        Properties: Record<string, unknown>;
      }>;
      return permissions.some(
        (p) =>
          p.Properties.Principal === 'events.amazonaws.com' &&
          JSON.stringify(p.Properties.FunctionName) ===
            JSON.stringify({ 'Fn::GetAtt': [meteringId, 'Arn'] }) &&
          JSON.stringify(p.Properties.SourceArn) === JSON.stringify({ 'Fn::GetAtt': [ruleId, 'Arn'] }),
      );
    }
  },
);

describe("the grant's condition on alert items", () => {
  // No local engine evaluates IAM, so the keys the alerts write and read are recorded from a
  // stand-in client and held against the prefix the grant allows.
  it('covers every item the outbox claims, leases, settles, reads or drops, and none of the counters or dedupe marks', async () => {
    const keys: Array<{ pk: string }> = [];
    const items = new Map<string, Record<string, unknown>>();
    const id = (key: { pk: string; sk: string }) => `${key.pk}\u0000${key.sk}`;
    const client = {
      send: async (command: unknown) => {
        if (command instanceof GetCommand) {
          const key = command.input.Key as { pk?: string; sk?: string; accountId?: string };
          keys.push(key as { pk: string });
          return { Item: items.get(id(key as { pk: string; sk: string })) };
        }
        if (command instanceof TransactWriteCommand) {
          for (const action of command.input.TransactItems ?? []) {
            const item = action.Put?.Item as { pk: string; sk: string };
            keys.push(item);
            items.set(id(item), { ...item });
          }
          return {};
        }
        if (command instanceof UpdateCommand) {
          const key = command.input.Key as { pk: string; sk: string };
          keys.push(key);
          const item = items.get(id(key)) ?? {};
          const values = command.input.ExpressionAttributeValues ?? {};
          if (values[':state']) item.state = values[':state'];
          if (values[':sending']) item.state = item.state === 'pending' ? 'sending' : item.state;
          if (values[':retryAt'] !== undefined) item.retryAt = values[':retryAt'];
          items.set(id(key), item);
          return { Attributes: item };
        }
        if (command instanceof DeleteCommand) keys.push(command.input.Key as { pk: string });
        if (command instanceof QueryCommand) {
          keys.push({ pk: String(command.input.ExpressionAttributeValues?.[':pk']) });
          return { Items: [] };
        }
        if (command instanceof PutCommand) keys.push(command.input.Item as { pk: string });
        return {};
      },
    } as unknown as DynamoDBDocumentClient;
    const plan: Plan = {
      planId: 'pro',
      name: 'Pro',
      quota: { requests: 10, period: 'day' },
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    let sesDown = false;
    const errors: unknown[] = [];
    const alerts = new QuotaAlerts({
      client,
      usageTable: 'usage',
      plans: {
        getPlan: async () => plan,
        owner: async (accountId: string) => ({
          owner: { accountId, email: 'owner@example.com' },
          planId: 'pro',
        }),
      } as unknown as PlanStore,
      reader: { usedInPeriod: async () => 10 } as unknown as UsageReader,
      sender: {
        send: async () => {
          if (sesDown) throw new Error('SES unavailable');
          return {};
        },
      },
      logger: { error: (...args: unknown[]) => errors.push(args), warn: () => {} } as unknown as Logger,
    });

    const now = new Date('2026-03-10T12:00:00Z');
    expect(await alerts.afterBatch([{ accountId: 'acct-sent', ts: now.getTime() }], now)).toBe(2);
    sesDown = true;
    // Each threshold is claimed and leased, its send fails, and it is left unconfirmed.
    expect(await alerts.afterBatch([{ accountId: 'acct-failed', ts: now.getTime() }], now)).toBe(0);
    await alerts.runSchedule(now);
    await alerts.confirmDelivered(`80-day-20260310-acct-failed`);

    expect(keys.length).toBeGreaterThan(10);
    for (const key of keys) expect(key.pk.startsWith(ALERT_MARK_PREFIX), key.pk).toBe(true);
    for (const pk of [accountPartition('acct-sent'), eventMark('e-1').pk]) {
      expect(pk.startsWith(ALERT_MARK_PREFIX), pk).toBe(false);
    }
  });
});
