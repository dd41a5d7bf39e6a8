import { readFileSync } from 'node:fs';
import { BatchGetCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LEDGER_FLUSH,
  ENV,
  LEDGER_FLUSH_PROFILES,
  meteringConfigSchema,
} from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import {
  isLedgerBackstopEvent,
  LEDGER_BACKSTOP_EVENT,
  LEDGER_BACKSTOP_INTERVAL_SECONDS,
  LEDGER_QUEUE_BATCHING_WINDOW_SECONDS,
  tableName,
  tables,
} from '../../contracts/resources';
import { DeploymentConfigError, readDeploymentContext, stackPropsFromContext } from '../../infra/cdk/config';
import { LEDGER_PARTITIONS } from '../../infra/cdk/constructs/data-tables';
import { SQS_CONSUMER_MAX_CONCURRENCY } from '../../infra/cdk/constructs/usage-transport';
import { TollgateStack } from '../../infra/cdk/tollgate-stack';
import { isAlertsEvent } from '../../services/metering/alert-events';
import { accountPartition, eventMark } from '../../services/usage/counter-keys';
import { journalDeltas } from '../../services/usage/ledger-deltas';
import { DynamoLedgerStore, SQS_LEDGER_NAME } from '../../services/usage/ledger-store';
import { logicalIdOf, type Permission, permissionsOf, type Synthesized, synthesize } from './synth';

// Over SQS, metering claims numbered events in a ledger on the usage table with plain single-item
// requests (services/usage/ledger-store.ts) beside the mark path's transactions. No local engine
// evaluates IAM, so the store's own requests are recorded from a stand-in client and held against
// the statements the synthesized role has, by the IAM rules those statements use.

// biome-ignore lint/suspicious/noExplicitAny: the template is untyped JSON; assertions check its shape.
type CfnProperties = any;

const STAGE = 'test';
const TRANSACTIONS_ONLY = {
  'ForAnyValue:StringEquals': { 'dynamodb:EnclosingOperation': ['TransactWriteItems'] },
};

/** One DynamoDB request as IAM authorizes it: its action, the partition keys it touches, its enclosing operation. */
interface Request {
  readonly action: string;
  readonly leadingKeys: readonly string[];
  readonly enclosing?: 'TransactWriteItems';
}

/** An IAM StringLike pattern as a regular expression (`*` any run, `?` one character). */
const likePattern = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/**
 * Whether one permission's condition holds for a request: the operators and keys the usage table's
 * statements use, by IAM's set semantics (ForAllValues holds for every value, ForAnyValue for at
 * least one, an absent key has no values). Any other operator or key throws: a statement this
 * evaluator cannot judge must not pass as allowing or refusing.
 */
function conditionHolds(condition: unknown, request: Request): boolean {
  if (condition === undefined) return true;
  return Object.entries(condition as Record<string, Record<string, string | string[]>>).every(
    ([operator, keys]) =>
      Object.entries(keys).every(([key, expected]) => {
        const patterns = Array.isArray(expected) ? expected : [expected];
        if (operator === 'ForAllValues:StringLike' && key === 'dynamodb:LeadingKeys')
          return request.leadingKeys.every((k) => patterns.some((p) => likePattern(p).test(k)));
        if (operator === 'ForAnyValue:StringEquals' && key === 'dynamodb:EnclosingOperation')
          return request.enclosing !== undefined && patterns.includes(request.enclosing);
        throw new Error(`no evaluation of ${operator} on ${key}`);
      }),
  );
}

/** A condition with its LeadingKeys in order, so grants compare whatever order they list partitions in. */
function withSortedPartitions(condition: unknown): unknown {
  const copy = structuredClone(condition) as Record<string, Record<string, unknown>> | undefined;
  const keys = copy?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'];
  if (copy && Array.isArray(keys))
    (copy['ForAllValues:StringLike'] as Record<string, unknown>)['dynamodb:LeadingKeys'] = [...keys].sort();
  return copy;
}

const allows = (granted: readonly Permission[], resource: string, request: Request): boolean =>
  granted.some(
    (p) => p.action === request.action && p.resource === resource && conditionHolds(p.condition, request),
  );

const table = 'usage';

/** What a recorded command asks IAM for. Any command the store was not known to send fails the test. */
function requestOf(command: unknown): Request {
  if (command instanceof GetCommand)
    return { action: 'dynamodb:GetItem', leadingKeys: [String(command.input.Key?.pk)] };
  if (command instanceof PutCommand)
    return { action: 'dynamodb:PutItem', leadingKeys: [String(command.input.Item?.pk)] };
  if (command instanceof UpdateCommand)
    return { action: 'dynamodb:UpdateItem', leadingKeys: [String(command.input.Key?.pk)] };
  if (command instanceof BatchGetCommand)
    return {
      action: 'dynamodb:BatchGetItem',
      leadingKeys: (command.input.RequestItems?.[table]?.Keys ?? []).map((k) => String(k.pk)),
    };
  throw new Error(`the ledger store sent a request this test does not know: ${String(command)}`);
}

/**
 * Every request a DynamoLedgerStore of ledger `name` sends, each method called (a test below checks
 * that none is left out), counters written with the deltas a journal of real events makes: key-day,
 * period and producer items.
 */
async function ledgerRequests(name: string): Promise<{ requests: Request[]; methods: string[] }> {
  const requests: Request[] = [];
  const client = {
    send: async (command: unknown) => {
      requests.push(requestOf(command));
      if (command instanceof BatchGetCommand) return { Responses: { [table]: [] } };
      return {};
    },
  };
  const store = new DynamoLedgerStore({ client: client as never, table, name, archiveTtlMs: 86_400_000 });
  const ts = Date.parse('2026-12-07T10:00:00Z');
  const deltas = journalDeltas(
    [
      { accountId: 'a1', keyId: 'k1', ts, units: 1, route: '/v1/rates/:base', method: 'GET', pid: 'p1' },
      { accountId: 'a2', keyId: 'k2', ts: ts + 1, units: 3, pid: 'p2' },
    ],
    86_400_000,
  );
  const head = { ver: 4, seq: 2, pend: { 2: 'j2~1~0' }, prod: { p1: 'r' } };
  const calls: Record<string, () => Promise<unknown>> = {
    readHead: () => store.readHead(),
    readDone: () => store.readDone(),
    commitHead: async () => {
      await store.commitHead(0, { ...head, ver: 1 });
      await store.commitHead(3, head);
    },
    putJournal: () => store.putJournal('j2', deltas),
    getJournals: () => store.getJournals(['j1', 'j2']),
    getArchives: () => store.getArchives(['p3', 'p4']),
    putArchive: () => store.putArchive('p3', { range: 'r', ver: 4 }),
    applyCounter: async () => {
      for (const delta of deltas) await store.applyCounter(delta, 2);
    },
    advanceDone: () => store.advanceDone(2),
  };
  for (const call of Object.values(calls)) await call();
  expect(new Set(deltas.map((d) => d.kind))).toEqual(new Set(['keyDay', 'period', 'producer']));
  return { requests, methods: Object.keys(calls) };
}

/** The stack without bundling or cdk-nag (seconds): for what only the metering function's settings show. */
function quickTemplate(context: Record<string, string>): { template: Template; meteringId: string } {
  const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context;
  const app = new App({
    context: {
      ...cdkJson,
      stage: STAGE,
      allowInsecureHttp: 'true',
      ...context,
      'aws:cdk:bundling-stacks': [],
    },
  });
  const deployment = readDeploymentContext(app.node, { [ENV.transport]: undefined });
  const stack = new TollgateStack(app, 'Quick', stackPropsFromContext(deployment, undefined));
  const template = Template.fromStack(stack);
  const meteringId = logicalIdOf(template, 'AWS::Lambda::Function', {
    FunctionName: `tollgate-${STAGE}-${SERVICE_NAMES.metering}`,
  });
  return { template, meteringId };
}

const environmentOf = (template: Template, functionId: string): Record<string, unknown> =>
  template.toJSON().Resources[functionId].Properties.Environment.Variables;

const usageArnOf = (template: Template): string => {
  const usage = tables.find((t) => t.id === 'usage');
  if (!usage) throw new Error('no usage table');
  const id = logicalIdOf(template, 'AWS::DynamoDB::Table', { TableName: tableName(STAGE, usage) });
  return JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] });
};

describe('the SQS ledger on AWS (transport=sqs)', () => {
  let synth: Synthesized;
  let meteringId: string;
  let usageArn: string;
  const granted = () =>
    permissionsOf(synth.template, meteringId).filter((p) => !p.action.startsWith('logs:'));

  beforeAll(() => {
    synth = synthesize({ stage: STAGE, transport: 'sqs' });
    if (synth.violations.length > 0) return;
    meteringId = logicalIdOf(synth.template, 'AWS::Lambda::Function', {
      FunctionName: `tollgate-${STAGE}-${SERVICE_NAMES.metering}`,
    });
    usageArn = usageArnOf(synth.template);
  });
  afterAll(() => synth?.cleanUp());

  it('synthesizes with no unacknowledged cdk-nag finding', () => {
    expect(synth.violations).toEqual([]);
  });

  it("the test drives every request method of the ledger store, and the store's partitions are the grant's", async () => {
    const methods = Object.entries(Object.getOwnPropertyDescriptors(DynamoLedgerStore.prototype))
      .filter(([name, d]) => name !== 'constructor' && typeof d.value === 'function')
      .map(([name]) => name);
    const { requests, methods: driven } = await ledgerRequests(SQS_LEDGER_NAME);
    expect(driven.sort()).toEqual(methods.sort());
    // Counters are in their account's partition; the store's own items in its ledger's.
    expect(accountPartition('a1').startsWith(LEDGER_PARTITIONS.counters)).toBe(true);
    for (const { leadingKeys } of requests)
      for (const key of leadingKeys)
        expect(
          key.startsWith(`${LEDGER_PARTITIONS.ledger}${SQS_LEDGER_NAME}`) ||
            key.startsWith(LEDGER_PARTITIONS.counters),
          key,
        ).toBe(true);
  });

  it.each([SQS_LEDGER_NAME, `${SQS_LEDGER_NAME}7`])(
    'allows every request the store of ledger %s sends, plainly, and no plain grant goes unused',
    async (name) => {
      const { requests } = await ledgerRequests(name);
      expect(requests.length).toBeGreaterThan(10);
      for (const request of requests)
        expect(allows(granted(), usageArn, request), JSON.stringify(request)).toBe(true);
      // Nothing more: metering's grants on the usage table beyond the mark path's transactions are
      // exactly, per action, the partitions the store's requests reach.
      const used = new Map<string, Set<string>>();
      for (const { action, leadingKeys } of requests)
        for (const key of leadingKeys) {
          const partition = Object.values(LEDGER_PARTITIONS).find((p) => key.startsWith(p));
          used.set(action, (used.get(action) ?? new Set()).add(`${partition}*`));
        }
      const plain = granted()
        .filter(
          (p) => p.resource === usageArn && JSON.stringify(p.condition) !== JSON.stringify(TRANSACTIONS_ONLY),
        )
        .map((p) => JSON.stringify([p.action, withSortedPartitions(p.condition)]))
        .sort();
      expect(plain).toEqual(
        [...used]
          .map(([action, partitions]) =>
            JSON.stringify([
              action,
              { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...partitions].sort() } },
            ]),
          )
          .sort(),
      );
    },
  );

  it('keeps the mark path transactional: a plain put, update or read reaches no counter or mark outside the ledger', () => {
    const mark = eventMark('e-1').pk;
    const counter = accountPartition('a1');
    const ledger = `${LEDGER_PARTITIONS.ledger}${SQS_LEDGER_NAME}`;
    const allowed = (request: Request) => allows(granted(), usageArn, request);
    // The mark path: a mark and its counters, in one transaction.
    expect(
      allowed({ action: 'dynamodb:PutItem', leadingKeys: [mark], enclosing: 'TransactWriteItems' }),
    ).toBe(true);
    expect(
      allowed({ action: 'dynamodb:UpdateItem', leadingKeys: [counter], enclosing: 'TransactWriteItems' }),
    ).toBe(true);
    // A plain put outside the ledger: no counter replaced, no mark written without its counter.
    for (const pk of [counter, mark, 'ALERT#a1', 'TOTAL#a1'])
      expect(allowed({ action: 'dynamodb:PutItem', leadingKeys: [pk] }), pk).toBe(false);
    expect(allowed({ action: 'dynamodb:UpdateItem', leadingKeys: [mark] })).toBe(false);
    expect(allowed({ action: 'dynamodb:GetItem', leadingKeys: [counter] })).toBe(false);
    // A batch read is allowed only if every key it names is the ledger's.
    expect(allowed({ action: 'dynamodb:BatchGetItem', leadingKeys: [`${ledger}#J#j1`, counter] })).toBe(
      false,
    );
    for (const action of [
      'dynamodb:DeleteItem',
      'dynamodb:BatchWriteItem',
      'dynamodb:Query',
      'dynamodb:Scan',
    ])
      expect(allowed({ action, leadingKeys: [ledger] }), action).toBe(false);
  });

  it(`runs the backstop every ${LEDGER_BACKSTOP_INTERVAL_SECONDS} s in metering with the contract's event, without retries of a missed run`, () => {
    const rules = Object.entries(synth.template.findResources('AWS::Events::Rule')) as Array<
      [string, { Properties: CfnProperties }]
    >;
    const backstop = rules.filter(([, r]) =>
      (r.Properties.Targets ?? []).some(
        (t: CfnProperties) => t.Input !== undefined && isLedgerBackstopEvent(JSON.parse(t.Input)),
      ),
    );
    expect(backstop).toHaveLength(1);
    const [ruleId, rule] = backstop[0] as [string, { Properties: CfnProperties }];
    const minutes = LEDGER_BACKSTOP_INTERVAL_SECONDS / 60;
    expect(rule.Properties.ScheduleExpression).toBe(`rate(${minutes} minute${minutes === 1 ? '' : 's'})`);
    expect(rule.Properties.State).toBe('ENABLED');
    expect(rule.Properties.Targets).toHaveLength(1);
    const target = rule.Properties.Targets[0];
    expect(target.Arn).toEqual({ 'Fn::GetAtt': [meteringId, 'Arn'] });
    expect(JSON.parse(target.Input)).toEqual(LEDGER_BACKSTOP_EVENT);
    expect(target.RetryPolicy).toEqual({
      MaximumEventAgeInSeconds: LEDGER_BACKSTOP_INTERVAL_SECONDS,
      MaximumRetryAttempts: 0,
    });
    // metering's handler takes it for the backstop, not for the alerts' schedule.
    expect(isAlertsEvent(JSON.parse(target.Input))).toBe(false);
    const invokers = Object.values(synth.template.findResources('AWS::Lambda::Permission')).filter(
      (p) => JSON.stringify(p.Properties.SourceArn) === JSON.stringify({ 'Fn::GetAtt': [ruleId, 'Arn'] }),
    );
    expect(invokers.map((p) => [p.Properties.Principal, p.Properties.FunctionName])).toEqual([
      ['events.amazonaws.com', { 'Fn::GetAtt': [meteringId, 'Arn'] }],
    ]);
  });

  it("caps the batches in flight on the one ledger head (the SQS event source's MaximumConcurrency)", () => {
    const mappings = Object.values(synth.template.findResources('AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(1);
    expect(mappings[0]?.Properties.ScalingConfig).toEqual({
      MaximumConcurrency: SQS_CONSUMER_MAX_CONCURRENCY,
    });
    // AWS's bounds, and few enough that one head stays far from the collapse docs/metering.md models.
    expect(SQS_CONSUMER_MAX_CONCURRENCY).toBeGreaterThanOrEqual(2);
    expect(SQS_CONSUMER_MAX_CONCURRENCY).toBeLessThanOrEqual(10);
  });

  it('turns the ledger on in metering with the default flush profile, values its schema accepts', () => {
    const variables = environmentOf(synth.template, meteringId);
    expect(variables[ENV.sqsDedupe]).toBe('ledger');
    expect(variables[ENV.ledgerFlush]).toBe(DEFAULT_LEDGER_FLUSH);
    const shape = meteringConfigSchema.shape;
    expect(shape[ENV.sqsDedupe].parse(variables[ENV.sqsDedupe])).toBe('ledger');
    expect(shape[ENV.ledgerFlush].parse(variables[ENV.ledgerFlush])).toBe(DEFAULT_LEDGER_FLUSH);
  });
});

describe('the flush profile (-c ledgerFlush)', () => {
  it.each(LEDGER_FLUSH_PROFILES)('-c ledgerFlush=%s sets TOLLGATE_LEDGER_FLUSH on metering', (profile) => {
    const { template, meteringId } = quickTemplate({ transport: 'sqs', ledgerFlush: profile });
    expect(environmentOf(template, meteringId)[ENV.ledgerFlush]).toBe(profile);
  });

  it.each(LEDGER_FLUSH_PROFILES)("-c ledgerFlush=%s sets the queue's batching window for it", (profile) => {
    const { template } = quickTemplate({ transport: 'sqs', ledgerFlush: profile });
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'));
    expect(mappings.map((m) => m.Properties.MaximumBatchingWindowInSeconds)).toEqual([
      LEDGER_QUEUE_BATCHING_WINDOW_SECONDS[profile],
    ]);
  });

  it('economy gathers five times longer batches than the others, which keep the 1 s usage lag', () => {
    expect(LEDGER_QUEUE_BATCHING_WINDOW_SECONDS).toEqual({ fresh: 1, balanced: 1, economy: 5 });
  });

  it('is one of the profiles metering knows, and only for the SQS transport', () => {
    const contextOf = (context: Record<string, string>) =>
      readDeploymentContext(new App({ context: { allowInsecureHttp: 'true', ...context } }).node, {});
    expect(contextOf({}).ledgerFlush).toBeUndefined();
    expect(stackPropsFromContext(contextOf({}), undefined).ledgerFlush).toBeUndefined();
    expect(stackPropsFromContext(contextOf({ ledgerFlush: 'economy' }), undefined).ledgerFlush).toBe(
      'economy',
    );
    expect(() => contextOf({ ledgerFlush: 'eager' })).toThrow(DeploymentConfigError);
    expect(() => contextOf({ ledgerFlush: 'eager' })).toThrow(/ledgerFlush/);
    expect(() => contextOf({ transport: 'kinesis', ledgerFlush: 'fresh' })).toThrow(/ledgerFlush.*kinesis/);
    expect(
      () =>
        new TollgateStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'K', {
          transport: 'kinesis',
          ledgerFlush: 'fresh',
        }),
    ).toThrow(/ledgerFlush/);
  });
});

describe('Kinesis deployments (no ledger)', () => {
  it('keep their grants and no backstop; the redrive queue is counted by marks, as its grant allows', () => {
    const { template, meteringId } = quickTemplate({ transport: 'kinesis' });
    const usageArn = usageArnOf(template);
    const onUsage = permissionsOf(template, meteringId)
      .filter((p) => p.resource === usageArn)
      .map((p) => JSON.stringify([p.action, p.condition ?? null]))
      .sort();
    expect(onUsage).toEqual(
      [
        ['dynamodb:UpdateItem', null],
        ['dynamodb:GetItem', null],
        ['dynamodb:PutItem', TRANSACTIONS_ONLY],
        ['dynamodb:UpdateItem', TRANSACTIONS_ONLY],
      ]
        .map((grant) => JSON.stringify(grant))
        .sort(),
    );
    const variables = environmentOf(template, meteringId);
    expect(variables[ENV.sqsDedupe]).toBe('marks');
    expect(variables[ENV.ledgerFlush]).toBeUndefined();
    const inputs = Object.values(template.findResources('AWS::Events::Rule')).flatMap((r) =>
      (r.Properties.Targets ?? []).map((t: CfnProperties) => t.Input),
    );
    expect(inputs.some((input) => input !== undefined && isLedgerBackstopEvent(JSON.parse(input)))).toBe(
      false,
    );
  });
});
