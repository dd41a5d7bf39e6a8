import type { Logger } from '@aws-lambda-powertools/logger';
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, meteringConfigSchema } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import type { Plan } from '../../contracts/plans';
import { ALERT_MARK_PREFIX, queueName, tableName, tables, usageQueue } from '../../contracts/resources';
import { accountPartition, eventMark } from '../../services/metering/counter-keys';
import { QuotaAlerts } from '../../services/metering/quota-alerts';
import type { UsageReader } from '../../services/metering/usage-reader';
import type { PlanStore } from '../../services/shared/plan-store';
import { logicalIdOf, permissionsOf, type Synthesized, synthesize } from './synth';

// Quota alerts on AWS (`-c alertFromAddress=…`): metering reads an account's owner and plan, its
// usage this period, puts and deletes the marks that make each alert one email, and sends through
// SES from that address only. Without the setting it gets none of it (tollgate-stack.test.ts).

const STAGE = 'test';
const REGION = 'eu-west-1';
const FROM = 'alerts@mail.example.com';

/** Plain puts and deletes in the usage table: only of items whose partition key is an alert mark's. */
const ALERT_MARKS_ONLY = {
  'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${ALERT_MARK_PREFIX}*`] },
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

    it('turns alerts on in metering: the accounts and plans tables and the sender, in an environment its schema accepts', () => {
      const variables = environment();
      expect(variables[ENV.accountsTable]).toEqual({ Ref: tableIds.accounts });
      expect(variables[ENV.plansTable]).toEqual({ Ref: tableIds.plans });
      expect(variables[ENV.alertFromAddress]).toBe(FROM);
      // The keys table is the provenance check's (BatchGetItem of key records), not the alerts'.
      expect(variables[ENV.keysTable]).toEqual({ Ref: tableIds.keys });
      // As deployed (references replaced by values of their shape), all three are there, so
      // services/metering/compose.ts builds the alerts.
      const dlqId = logicalIdOf(synth.template, 'AWS::SQS::Queue', {
        QueueName: queueName(STAGE, usageQueue, true),
      });
      const deployed = Object.fromEntries(
        Object.entries(variables)
          .filter(([name]) => name.startsWith('TOLLGATE_'))
          .map(([name, value]) => {
            if (typeof value === 'string') return [name, value];
            const ref = (value as { Ref?: string }).Ref;
            if (ref === dlqId) return [name, `https://sqs.${REGION}.amazonaws.com/123456789012/${ref}`];
            if (ref !== undefined) return [name, ref.toLowerCase()];
            throw new Error(`unexpected value of ${name}: ${JSON.stringify(value)}`);
          }),
      );
      const parsed = meteringConfigSchema.safeParse(deployed);
      expect(parsed.error?.issues ?? []).toEqual([]);
      expect(parsed.data?.[ENV.accountsTable]).toBeDefined();
      expect(parsed.data?.[ENV.plansTable]).toBeDefined();
      expect(parsed.data?.[ENV.alertFromAddress]).toBe(FROM);
    });

    it('lets metering read owners and plans by GetItem only, query usage, and put or delete only alert marks', () => {
      const dynamo = granted()
        .filter((p) => p.action.startsWith('dynamodb:'))
        .map((p) => JSON.stringify([p.action, p.resource, p.condition ?? null]))
        .sort();
      const counting =
        transport === 'sqs'
          ? [
              ['dynamodb:PutItem', arn('usage'), TRANSACTIONS_ONLY],
              ['dynamodb:UpdateItem', arn('usage'), TRANSACTIONS_ONLY],
            ]
          : [
              ['dynamodb:UpdateItem', arn('usage'), null],
              ['dynamodb:GetItem', arn('usage'), null],
            ];
      const alerts = [
        ['dynamodb:GetItem', arn('accounts'), null],
        ['dynamodb:GetItem', arn('plans'), null],
        ['dynamodb:Query', arn('usage'), null],
        ['dynamodb:PutItem', arn('usage'), ALERT_MARKS_ONLY],
        ['dynamodb:DeleteItem', arn('usage'), ALERT_MARKS_ONLY],
      ];
      const provenance = [['dynamodb:BatchGetItem', arn('keys'), null]];
      expect(dynamo).toEqual(
        [...counting, ...alerts, ...provenance].map((grant) => JSON.stringify(grant)).sort(),
      );
    });

    it("lets metering send email only from the sender address, through the address's or its domain's SES identity", () => {
      const ses = granted().filter((p) => p.action.startsWith('ses:'));
      expect(ses.map((p) => p.resource).sort()).toEqual(
        [sesIdentity(FROM), sesIdentity('mail.example.com')].sort(),
      );
      for (const permission of ses) {
        expect(permission.action).toBe('ses:SendEmail');
        expect(permission.condition).toEqual({ StringEquals: { 'ses:FromAddress': FROM } });
      }
      // Nothing else beyond the data, the transport and the dead letters.
      expect(
        granted().filter(
          (p) => !['dynamodb:', 'ses:', 'sqs:', 'kinesis:'].some((s) => p.action.startsWith(s)),
        ),
      ).toEqual([]);
    });
  },
);

describe("the grant's condition on alert marks", () => {
  // No local engine evaluates IAM, so the keys QuotaAlerts puts and deletes are recorded from a
  // stand-in client and held against the prefix the grant allows.
  it('covers every mark metering puts or takes back, and none of its counters or dedupe marks', async () => {
    const writes: Array<{ pk: string }> = [];
    const client = {
      send: async (command: unknown) => {
        if (command instanceof GetCommand) return { Item: { email: 'owner@example.com', planId: 'pro' } };
        if (command instanceof PutCommand) writes.push(command.input.Item as { pk: string });
        if (command instanceof DeleteCommand) writes.push(command.input.Key as { pk: string });
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
      accountsTable: 'accounts',
      plans: { getPlan: async () => plan } as unknown as PlanStore,
      reader: { total: async () => 10 } as unknown as UsageReader,
      sender: {
        send: async () => {
          if (sesDown) throw new Error('SES unavailable');
        },
      },
      logger: { error: (...args: unknown[]) => errors.push(args) } as unknown as Logger,
    });

    const now = new Date('2026-03-10T12:00:00Z');
    expect(await alerts.afterBatch(['acct-sent'], now)).toBe(2);
    sesDown = true;
    // The first threshold's mark is put, its send fails, and the mark is deleted again.
    expect(await alerts.afterBatch(['acct-failed'], now)).toBe(0);
    expect(errors).toHaveLength(1);

    expect(writes).toHaveLength(4);
    for (const key of writes) expect(key.pk.startsWith(ALERT_MARK_PREFIX), key.pk).toBe(true);
    for (const pk of [accountPartition('acct-sent'), eventMark('e-1').pk]) {
      expect(pk.startsWith(ALERT_MARK_PREFIX), pk).toBe(false);
    }
  });
});
