import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListMessageMoveTasksCommand, SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KeyApiMetric, MeteringMetric } from '../../contracts/metric-names';
import { newUsageEvent, type UsageEvent, utcDay } from '../../contracts/usage-event';
import { generateApiKey } from '../../services/accounts/api-key';
import { PlanStore } from '../../services/accounts/plan-store';
import {
  callerWaitingClientConfig,
  KinesisUsagePublisher,
  SqsUsagePublisher,
} from '../../services/gate/publisher';
import { UsageReader } from '../../services/usage/usage-reader';
import { albEvent, behindAlb, resultJson } from '../support/alb';
import { awsError, engineClients, injectFaults } from '../support/aws';
import { ConsumerProcess, newTally } from '../support/consumer-process';
import { recordFigures } from '../support/figures';
import { buildKeyApi, type KeyApiUnderTest, keyStore, tablesFrom } from '../support/key-api';
import { freePort, startPartitionProxy } from '../support/net';
import {
  createTestQueue,
  queueCounts,
  queueDepth,
  receiveAll,
  sendBodies,
  type TestQueue,
} from '../support/queues';
import { eventually, sleep } from '../support/wait';

const endpoints = inject('endpoints');
const env = inject('env');
const tables = tablesFrom(env);
const admin = engineClients(endpoints);
const store = keyStore(admin.dynamo, tables);
const usage = new UsageReader({ client: admin.doc, table: tables.usage });

let accounts = 0;
/** An account with one active key, written by the real KeyStore. */
async function newKey(): Promise<{ keyId: string; accountId: string; key: string }> {
  const accountId = `rel_fault_${process.pid}_${Date.now()}_${accounts++}`;
  await store.provisionAccount({
    accountId,
    email: `${accountId}@example.com`,
    userName: accountId,
    now: new Date(),
  });
  const created = await store.createKey({ accountId, name: 'faults', now: new Date() });
  if (!created.ok) throw new Error('no key');
  return { keyId: created.value.record.keyId, accountId, key: created.value.secret.key };
}

const withKey = (key: string) => albEvent({ method: 'GET', headers: { 'x-api-key': key } });
/** What services/key-api builds its AWS clients with, on the local engines' region and credentials. */
const shipped = {
  ...callerWaitingClientConfig,
  region: endpoints.region,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
};
/** The key-api function's timeout in infra/cdk: past it the ALB answers 502 instead of ours. */
const KEY_API_FUNCTION_TIMEOUT_MS = 5000;
/** What an answer must leave of the function timeout: cold start, logging, the ALB's own hop. */
const MARGIN_MS = 1000;

/** One request to a key-api, as `<status> <error code | ok>` and how long the answer took. */
async function timed(api: KeyApiUnderTest, key: string): Promise<{ answer: string; ms: number }> {
  const started = performance.now();
  const result = await api.handler(withKey(key));
  const ms = Math.round(performance.now() - started);
  return { answer: `${result.statusCode} ${resultJson(result).error?.code ?? 'ok'}`, ms };
}
const metricsOf = (totals: Map<string, number>) => Object.fromEntries(totals);

/** Seeded PRNG (mulberry32): the same faults on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const figures: Record<string, unknown> = {};
afterAll(async () => {
  await recordFigures('faults', figures);
  admin.dynamo.destroy();
  admin.sqs.destroy();
  admin.kinesis.destroy();
});

describe('(1) publishing the usage event fails or times out in key-api', () => {
  let queue: TestQueue;
  let key: Awaited<ReturnType<typeof newKey>>;
  beforeAll(async () => {
    queue = await createTestQueue(admin.sqs, 'publish', { visibilityTimeoutSeconds: 30, maxReceiveCount: 5 });
    key = await newKey();
  });

  it('SQS refuses: closed answers 503 service_unavailable, open answers 200 and counts UnmeteredRequests', async () => {
    const { sqs, dynamo } = engineClients(endpoints);
    let failing = true;
    injectFaults(sqs, (command) =>
      failing && command === 'SendMessageCommand' ? awsError('ServiceUnavailable', 'SQS is down') : undefined,
    );
    const publisher = new SqsUsagePublisher({ queueUrl: queue.queueUrl, client: sqs });
    const closed = buildKeyApi({ dynamo, tables, publisher, publishFailureMode: 'closed' });
    const open = buildKeyApi({ dynamo, tables, publisher, publishFailureMode: 'open' });

    const refused = await closed.handler(withKey(key.key));
    const closedMetrics = metricsOf(closed.metrics);
    expect(refused.statusCode).toBe(503);
    expect(refused.headers?.['retry-after']).toBe('1');
    expect(resultJson(refused).error?.code).toBe('service_unavailable');
    expect(metricsOf(closed.metrics)).toMatchObject({ [KeyApiMetric.publishFailures]: 1 });
    expect(closed.metrics.has(KeyApiMetric.checks.accepted)).toBe(false);
    expect(closed.metrics.has(KeyApiMetric.unmetered)).toBe(false);

    // Through the local ALB the caller sees the same: a 503 in the one error shape.
    const alb = await behindAlb(closed.handler);
    let throughAlb: { status: number; code: string | undefined; bodyShape: string };
    try {
      const response = await fetch(alb.endpoint, { headers: { 'x-api-key': key.key } });
      const body = (await response.json()) as { error: { code?: string } };
      throughAlb = {
        status: response.status,
        code: body.error?.code,
        // The answer's shape: its keys, as `{ error: { code, message } }`.
        bodyShape: `{ ${Object.keys(body).join(', ')}: { ${Object.keys(body.error ?? {}).join(', ')} } }`,
      };
      expect(response.status).toBe(503);
      expect(body).toEqual({
        error: { code: 'service_unavailable', message: expect.any(String) },
      });
    } finally {
      await alb.close();
    }

    const letThrough = await open.handler(withKey(key.key));
    expect(letThrough.statusCode).toBe(200);
    expect(resultJson(letThrough)).toMatchObject({ ok: true, keyId: key.keyId });
    expect(metricsOf(open.metrics)).toMatchObject({
      [KeyApiMetric.publishFailures]: 1,
      [KeyApiMetric.unmetered]: 1,
      [KeyApiMetric.checks.accepted]: 1,
    });
    const queueDepthDuringFailure = await queueDepth(admin.sqs, queue.queueUrl);
    expect(queueDepthDuringFailure).toBe(0);

    failing = false;
    expect((await closed.handler(withKey(key.key))).statusCode).toBe(200);
    expect(await queueDepth(admin.sqs, queue.queueUrl)).toBe(1);
    expect(closed.metrics.get(KeyApiMetric.publishFailures)).toBe(2); // one direct, one over HTTP; no new one
    figures.publishRefused = {
      ...(figures.publishRefused as object | undefined),
      sqs: {
        closed: {
          status: refused.statusCode,
          code: resultJson(refused).error?.code,
          retryAfter: refused.headers?.['retry-after'],
        },
        alb: throughAlb,
        closedMetrics,
        open: { status: letThrough.statusCode },
        openMetrics: metricsOf(open.metrics),
        queueDepthDuringFailure,
      },
    };
    sqs.destroy();
    dynamo.destroy();
  });

  it('Kinesis refuses: the same in both modes', async () => {
    // The publisher retries by itself (it marks a copy it resends), so its client makes one attempt.
    const { kinesis, dynamo } = engineClients(endpoints, { maxAttempts: 1 });
    let failing = true;
    injectFaults(kinesis, (command) =>
      failing && command === 'PutRecordCommand'
        ? awsError('ProvisionedThroughputExceededException', 'Rate exceeded for shard')
        : undefined,
    );
    const publisher = new KinesisUsagePublisher({
      streamName: env.TOLLGATE_USAGE_STREAM_NAME ?? '',
      client: kinesis,
    });
    const closed = buildKeyApi({ dynamo, tables, publisher, publishFailureMode: 'closed' });
    const open = buildKeyApi({ dynamo, tables, publisher, publishFailureMode: 'open' });
    const refused = await closed.handler(withKey(key.key));
    expect(refused.statusCode).toBe(503);
    expect(resultJson(refused).error?.code).toBe('service_unavailable');
    const letThrough = await open.handler(withKey(key.key));
    expect(letThrough.statusCode).toBe(200);
    expect(metricsOf(closed.metrics)).toMatchObject({ [KeyApiMetric.publishFailures]: 1 });
    expect(metricsOf(open.metrics)).toMatchObject({
      [KeyApiMetric.publishFailures]: 1,
      [KeyApiMetric.unmetered]: 1,
      [KeyApiMetric.checks.accepted]: 1,
    });
    figures.publishRefused = {
      ...(figures.publishRefused as object | undefined),
      kinesis: {
        closed: { status: refused.statusCode, code: resultJson(refused).error?.code },
        closedMetrics: metricsOf(closed.metrics),
        open: { status: letThrough.statusCode },
        openMetrics: metricsOf(open.metrics),
      },
    };
    failing = false;
    expect((await closed.handler(withKey(key.key))).statusCode).toBe(200);
    kinesis.destroy();
    dynamo.destroy();
  });

  it('SQS stops answering (a partition): with the shipped timeouts, closed answers 503 and open 200 + unmetered', async () => {
    const proxy = await startPartitionProxy(endpoints.sqs);
    const sqs = new SQSClient({ ...shipped, endpoint: proxy.endpoint });
    const { dynamo } = engineClients(endpoints, callerWaitingClientConfig);
    const publisher = new SqsUsagePublisher({ queueUrl: queue.queueUrl, client: sqs });
    const closed = buildKeyApi({ dynamo, tables, publisher, publishFailureMode: 'closed' });
    const open = buildKeyApi({ dynamo, tables, publisher, publishFailureMode: 'open' });
    try {
      expect((await timed(closed, key.key)).answer).toBe('200 ok'); // warm: key cached, proxy passes
      proxy.hang();
      const [c, o] = await Promise.all([timed(closed, key.key), timed(open, key.key)]);
      expect(c.answer).toBe('503 service_unavailable');
      expect(o.answer).toBe('200 ok');
      expect(metricsOf(open.metrics)).toMatchObject({
        [KeyApiMetric.publishFailures]: 1,
        [KeyApiMetric.unmetered]: 1,
      });
      // Two attempts of at most 1 s: an answer well inside key-api's 5 s function timeout.
      expect(c.ms).toBeGreaterThanOrEqual(1900);
      expect(c.ms).toBeLessThan(KEY_API_FUNCTION_TIMEOUT_MS);
      proxy.heal();
      expect((await timed(closed, key.key)).answer).toBe('200 ok');
      figures.publishHang = {
        closed: c,
        open: o,
        openMetrics: metricsOf(open.metrics),
        parameters: {
          functionTimeoutMs: KEY_API_FUNCTION_TIMEOUT_MS,
          maxAttempts: callerWaitingClientConfig.maxAttempts,
          requestTimeoutMs: callerWaitingClientConfig.requestHandler.requestTimeout,
        },
      };
    } finally {
      sqs.destroy();
      dynamo.destroy();
      await proxy.close();
    }
  });
});

describe('(2) DynamoDB unavailable during key checks', () => {
  it('cached keys keep working within the stale window; unknown keys get 503, not 401 or 500', async () => {
    const [known, neverSeen] = [await newKey(), await newKey()];
    const queue = await createTestQueue(admin.sqs, 'outage', {
      visibilityTimeoutSeconds: 30,
      maxReceiveCount: 5,
    });
    const { dynamo, sqs } = engineClients(endpoints);
    let down = false;
    injectFaults(dynamo, () =>
      down
        ? Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' })
        : undefined,
    );
    // The shipped windows scaled down (10 s fresh, 60 s stale) so the test sees both ends.
    const windows = { freshMs: 500, staleMs: 2000, negativeMs: 3000 };
    const api = buildKeyApi({
      dynamo,
      tables,
      publisher: new SqsUsagePublisher({ queueUrl: queue.queueUrl, client: sqs }),
      windows,
    });
    const unknown = generateApiKey('tg').key;
    const answer = async (key: string) => {
      const result = await api.handler(withKey(key));
      return `${result.statusCode} ${resultJson(result).error?.code ?? 'ok'}`;
    };

    // Every answer is kept for the figures as it was given.
    const answers: Record<string, string> = {};
    const seen = async (name: string, key: string) => {
      answers[name] = await answer(key);
      return answers[name];
    };
    expect(await answer(known.key)).toBe('200 ok');
    const loadedAt = Date.now();
    down = true;
    expect(await seen('cachedFresh', known.key)).toBe('200 ok'); // fresh
    await sleep(windows.freshMs + 100);
    expect(await seen('cachedStale', known.key)).toBe('200 ok'); // stale, served because DynamoDB cannot answer
    const staleServed = api.metrics.get(KeyApiMetric.cacheStaleServed);
    expect(staleServed).toBe(1);
    expect(await seen('unknown', unknown)).toBe('503 service_unavailable');
    expect(await seen('neverCached', neverSeen.key)).toBe('503 service_unavailable'); // exists, but cannot be checked
    expect(await seen('malformed', 'tg_typo')).toBe('401 malformed_key'); // needs no DynamoDB
    const refused = await api.handler(withKey(unknown));
    expect(refused.headers?.['retry-after']).toBe('1');
    expect(resultJson(refused)).toEqual({
      error: { code: 'service_unavailable', message: expect.any(String) },
    });
    expect(api.metrics.get(KeyApiMetric.checks.unavailable)).toBe(3);

    // Past fresh + stale, a known key cannot be vouched for either.
    await sleep(Math.max(0, loadedAt + windows.freshMs + windows.staleMs + 100 - Date.now()));
    expect(await seen('cachedPastStale', known.key)).toBe('503 service_unavailable');

    down = false;
    expect(await seen('recoveredKnown', known.key)).toBe('200 ok');
    expect(await seen('recoveredUnknown', unknown)).toBe('401 unknown_key');
    expect(await seen('recoveredNeverCached', neverSeen.key)).toBe('200 ok');
    figures.dynamoDbErrors = {
      parameters: windows,
      answers,
      staleServed,
      retryAfter: refused.headers?.['retry-after'],
    };
    dynamo.destroy();
    sqs.destroy();
  });

  it('DynamoDB (and then SQS too) stops answering: stale answers and 503s come within the 5 s budget', async () => {
    const [known] = [await newKey()];
    const dynamoProxy = await startPartitionProxy(endpoints.dynamodb);
    const sqsProxy = await startPartitionProxy(endpoints.sqs);
    const queue = await createTestQueue(admin.sqs, 'hang', {
      visibilityTimeoutSeconds: 30,
      maxReceiveCount: 5,
    });
    const dynamo = new DynamoDBClient({ ...shipped, endpoint: dynamoProxy.endpoint });
    const sqs = new SQSClient({ ...shipped, endpoint: sqsProxy.endpoint });
    const api = buildKeyApi({
      dynamo,
      tables,
      publisher: new SqsUsagePublisher({ queueUrl: queue.queueUrl, client: sqs }),
      windows: { freshMs: 500, staleMs: 60_000, negativeMs: 3000 },
    });
    try {
      expect((await timed(api, known.key)).answer).toBe('200 ok');
      dynamoProxy.hang();
      await sleep(600);
      // The lookup times out (2 x 1 s), the stale answer is used; the usage figure is then not read
      // at all (DynamoDB was found down for this request): about one timeout.
      const stale = await timed(api, known.key);
      expect(stale.answer).toBe('200 ok');
      const unknown = await timed(api, generateApiKey('tg').key);
      expect(unknown.answer).toBe('503 service_unavailable');
      // Everything hung: the lookup and the publish each time out; still a 503, still inside 5 s.
      sqsProxy.hang();
      await sleep(600);
      const allHung = await timed(api, known.key);
      expect(allHung.answer).toBe('503 service_unavailable');
      for (const t of [stale, unknown, allHung]) expect(t.ms).toBeLessThan(KEY_API_FUNCTION_TIMEOUT_MS);
      dynamoProxy.heal();
      sqsProxy.heal();
      expect((await timed(api, known.key)).answer).toBe('200 ok');
      figures.dynamoDbHang = { staleServed: stale, unknownKey: unknown, dynamoDbAndSqsHung: allHung };
    } finally {
      dynamo.destroy();
      sqs.destroy();
      await dynamoProxy.close();
      await sqsProxy.close();
    }
  });

  it('a quota plan and a hung DynamoDB: once the key lookup finds it down, no further read; 503 or the last known usage within the budget less a margin', async () => {
    const plans = new PlanStore({
      client: admin.doc,
      plansTable: tables.plans,
      accountsTable: tables.accounts,
    });
    const planId = `hang-quota-${process.pid}-${Date.now()}`;
    await plans.putPlan(planId, { name: 'Hang', quota: { requests: 1000, period: 'month' } }, new Date());
    const [read, unread] = [await newKey(), await newKey()];
    for (const k of [read, unread]) expect(await plans.assignPlan(k.accountId, planId)).toBe(true);
    const dynamoProxy = await startPartitionProxy(endpoints.dynamodb);
    const queue = await createTestQueue(admin.sqs, 'hang-quota', {
      visibilityTimeoutSeconds: 30,
      maxReceiveCount: 5,
    });
    const dynamo = new DynamoDBClient({ ...shipped, endpoint: dynamoProxy.endpoint });
    // The quota's first read of `unread`'s account fails (throttled): its key and terms are cached,
    // its usage is not, as in a container whose first quota read met a brief outage.
    let failQuotaRead = true;
    injectFaults(dynamo, (command) =>
      command === 'TransactGetItemsCommand' && failQuotaRead ? awsError('ThrottlingException') : undefined,
    );
    const sent: string[] = [];
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize', name: 'sentCommands', priority: 'high' },
    );
    const api = buildKeyApi({
      dynamo,
      tables,
      publisher: new SqsUsagePublisher({ queueUrl: queue.queueUrl, client: admin.sqs }),
      windows: { freshMs: 500, staleMs: 60_000, negativeMs: 3000 },
    });
    try {
      expect((await timed(api, unread.key)).answer).toBe('503 service_unavailable');
      failQuotaRead = false;
      expect((await timed(api, read.key)).answer).toBe('200 ok');
      dynamoProxy.hang();
      await sleep(600);
      sent.length = 0;
      // Key and terms past their fresh window: the key lookup times out (2 × 1 s) and the stale
      // entries are used; the terms, the quota and the usage figure are then not read at all.
      const lastKnown = await timed(api, read.key);
      const lastKnownSent = [...sent];
      sent.length = 0;
      const noUsageYet = await timed(api, unread.key);
      const noUsageYetSent = [...sent];
      expect(lastKnown.answer).toBe('200 ok');
      expect(noUsageYet.answer).toBe('503 service_unavailable');
      expect(lastKnownSent).toEqual(['QueryCommand']);
      expect(noUsageYetSent).toEqual(['QueryCommand']);
      for (const t of [lastKnown, noUsageYet])
        expect(t.ms).toBeLessThan(KEY_API_FUNCTION_TIMEOUT_MS - MARGIN_MS);
      dynamoProxy.heal();
      await sleep(600);
      expect((await timed(api, unread.key)).answer).toBe('200 ok');
      figures.quotaPlanHang = {
        parameters: { functionTimeoutMs: KEY_API_FUNCTION_TIMEOUT_MS, marginMs: MARGIN_MS },
        lastKnown: { ...lastKnown, commands: lastKnownSent.length },
        noUsageYet: { ...noUsageYet, commands: noUsageYetSent.length },
      };
    } finally {
      dynamo.destroy();
      await dynamoProxy.close();
    }
  });

  it('a DynamoDB that refuses connections (no injected error) gives 503 as well', async () => {
    const deadPort = await freePort();
    const dynamo = new DynamoDBClient({
      region: endpoints.region,
      endpoint: `http://127.0.0.1:${deadPort}`,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const api = buildKeyApi({
      dynamo,
      tables,
      publisher: new SqsUsagePublisher({
        queueUrl: 'http://127.0.0.1:1/000000000000/none',
        client: admin.sqs,
      }),
    });
    const started = performance.now();
    const result = await api.handler(withKey(generateApiKey('tg').key));
    const ms = Math.round(performance.now() - started);
    expect(result.statusCode).toBe(503);
    expect(resultJson(result).error?.code).toBe('service_unavailable');
    figures.dynamoDbConnectionRefused = {
      status: result.statusCode,
      code: resultJson(result).error?.code,
      answerMs: ms,
    };
    dynamo.destroy();
  });
});

describe('(3) DynamoDB throttling in the consumer', () => {
  // The single-aggregate case is in test/integ/metering-faults.integ.test.ts; this one throttles at
  // random across many aggregates while two consumers share the queue (and the account counters).
  it('random throttling under two concurrent consumers still counts every event once', async () => {
    const queue = await createTestQueue(admin.sqs, 'throttle', {
      visibilityTimeoutSeconds: 2,
      maxReceiveCount: 10,
    });
    const tally = newTally();
    const random = seeded(42);
    const maxThrottles = 20;
    let throttles = 0;
    const consumers = [0, 1].map(() => {
      const consumer = new ConsumerProcess({
        endpoints,
        queue,
        tables,
        tally,
        // Small batches: the consumer packs a batch's aggregates into one transaction, so this
        // gives the 20 throttled transactions enough transactions to fall on.
        batchSize: 5,
        batchingWindowMs: 100,
      });
      injectFaults(consumer.clients.dynamo, (command) => {
        if (command !== 'TransactWriteItemsCommand' || throttles >= maxThrottles || random() > 0.4)
          return undefined;
        throttles++;
        return awsError(
          'ProvisionedThroughputExceededException',
          'Rate of requests exceeds the allowed throughput',
        );
      });
      return consumer.start();
    });
    const run = `${process.pid}_${Date.now()}`;
    const keys = Array.from({ length: 10 }, (_, i) => ({
      keyId: `key_thr_${run}_${i}`,
      accountId: `acc_thr_${run}_${i % 2}`,
    }));
    const events: UsageEvent[] = [];
    for (let i = 0; i < 300; i++) {
      const k = keys[i % keys.length] as (typeof keys)[number];
      events.push(newUsageEvent({ ...k, now: new Date() }));
    }
    await sendBodies(
      admin.sqs,
      queue.queueUrl,
      events.map((e) => JSON.stringify(e)),
    );
    const today = utcDay(Date.now());
    const total = async () =>
      (await Promise.all(keys.map((k) => usage.keyDayCount(k.accountId, k.keyId, today)))).reduce(
        (a, b) => a + b,
        0,
      );
    const settleMs = await eventually(
      async () => (await queueDepth(admin.sqs, queue.queueUrl)) === 0,
      60_000,
      200,
    );
    await sleep(2500);
    await Promise.all(consumers.map((c) => c.stop()));

    for (const k of keys) expect(await usage.keyDayCount(k.accountId, k.keyId, today), k.keyId).toBe(30);
    expect(await total()).toBe(300);
    const accountTotal = async (accountId: string) =>
      (await usage.dailyCounts({ accountId }, today, today)).reduce((a, d) => a + d.count, 0);
    expect(await accountTotal(`acc_thr_${run}_0`)).toBe(150);
    expect(await accountTotal(`acc_thr_${run}_1`)).toBe(150);
    expect(throttles).toBe(maxThrottles);
    expect(tally.metrics.get(MeteringMetric.aggregatesFailed)).toBe(maxThrottles);
    const deadLettered = await queueDepth(admin.sqs, queue.dlqUrl);
    expect(deadLettered).toBe(0);
    figures.consumerThrottling = {
      parameters: { events: events.length, consumers: consumers.length, maxThrottles },
      throttledTransactions: throttles,
      aggregatesFailed: tally.metrics.get(MeteringMetric.aggregatesFailed),
      counted: await total(),
      countedPerKey: Object.fromEntries(
        await Promise.all(
          keys.map(async (k) => [k.keyId, await usage.keyDayCount(k.accountId, k.keyId, today)] as const),
        ),
      ),
      countedPerAccount: Object.fromEntries(
        await Promise.all(
          [...new Set(keys.map((k) => k.accountId))].map(async (a) => [a, await accountTotal(a)] as const),
        ),
      ),
      duplicatesDropped: tally.duplicates,
      deadLettered,
      settleMs,
    };
  }, 90_000);
});

describe('(4) redrive from the dead-letter queue after a fix', () => {
  it('records that failed until fixed are counted once when redriven, and once when redriven twice', async () => {
    const queue = await createTestQueue(admin.sqs, 'redrive', {
      visibilityTimeoutSeconds: 1,
      maxReceiveCount: 2,
    });
    const tally = newTally();
    const consumer = new ConsumerProcess({
      endpoints,
      queue,
      tables,
      tally,
      batchSize: 25,
      batchingWindowMs: 100,
    });
    const run = `${process.pid}_${Date.now()}`;
    const broken = { keyId: `key_redrive_broken_${run}`, accountId: `acc_redrive_${run}` };
    const healthy = { keyId: `key_redrive_ok_${run}`, accountId: `acc_redrive_${run}` };
    // A bug that makes one key's aggregate fail on every delivery, until the fix is deployed.
    let bugged = true;
    injectFaults(consumer.clients.dynamo, (command, input) =>
      bugged && command === 'TransactWriteItemsCommand' && JSON.stringify(input).includes(broken.keyId)
        ? awsError('ValidationException', 'simulated bug: this aggregate cannot be written')
        : undefined,
    );
    consumer.start();
    const brokenEvents = Array.from({ length: 10 }, () => newUsageEvent({ ...broken, now: new Date() }));
    const healthyEvents = Array.from({ length: 10 }, () => newUsageEvent({ ...healthy, now: new Date() }));
    await sendBodies(
      admin.sqs,
      queue.queueUrl,
      brokenEvents.flatMap((e, i) => [JSON.stringify(e), JSON.stringify(healthyEvents[i])]),
    );
    const today = utcDay(Date.now());
    const count = (keyId: string) => usage.keyDayCount(healthy.accountId, keyId, today);

    await eventually(async () => (await count(healthy.keyId)) === 10, 20_000);
    // After maxReceiveCount deliveries the SQS engine itself moves them to the DLQ.
    const movedMs = await eventually(
      async () => (await queueDepth(admin.sqs, queue.dlqUrl)) === 10,
      30_000,
      200,
    );
    const countedBeforeFix = await count(broken.keyId);
    expect(countedBeforeFix).toBe(0);
    expect(await queueDepth(admin.sqs, queue.queueUrl)).toBe(0);

    bugged = false; // the fix is deployed

    // Redrive 1: a tool that sends each dead letter back and crashes before deleting it.
    const dead = await receiveAll(admin.sqs, queue.dlqUrl, { remove: false, visibilityTimeout: 2 });
    expect(dead.map((m) => m.Body).sort()).toEqual(brokenEvents.map((e) => JSON.stringify(e)).sort());
    // Moved by the engine, not dead-lettered by the consumer: no reason attribute, source recorded.
    expect(dead.every((m) => m.MessageAttributes?.reason === undefined)).toBe(true);
    expect(new Set(dead.map((m) => m.Attributes?.DeadLetterQueueSourceArn))).toEqual(
      new Set([queue.queueArn]),
    );
    await sendBodies(
      admin.sqs,
      queue.queueUrl,
      dead.map((m) => m.Body ?? ''),
    );
    const firstRedriveMs = await eventually(async () => (await count(broken.keyId)) === 10, 20_000);
    const countedAfterFirstRedrive = await count(broken.keyId);

    // Redrive 2: the same messages, still in the DLQ, moved back with SQS's own redrive.
    await eventually(async () => (await queueCounts(admin.sqs, queue.dlqUrl)).visible === 10, 10_000);
    await admin.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: queue.dlqArn }));
    await eventually(async () => {
      const tasks = await admin.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: queue.dlqArn }));
      return tasks.Results?.[0]?.Status === 'COMPLETED';
    }, 20_000);
    const tasks = await admin.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: queue.dlqArn }));
    expect(tasks.Results?.[0]).toMatchObject({ Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 10 });
    await eventually(
      async () =>
        (await queueDepth(admin.sqs, queue.queueUrl)) === 0 &&
        (await queueDepth(admin.sqs, queue.dlqUrl)) === 0,
      20_000,
      200,
    );
    await sleep(1500);
    await consumer.stop();

    expect(await count(broken.keyId)).toBe(10);
    expect(await count(healthy.keyId)).toBe(10);
    expect(
      (await usage.dailyCounts({ accountId: broken.accountId }, today, today)).reduce(
        (a, d) => a + d.count,
        0,
      ),
    ).toBe(20);
    expect(tally.duplicates).toBeGreaterThanOrEqual(10);
    figures.dlqRedrive = {
      parameters: { failingRecords: brokenEvents.length, maxReceiveCount: 2 },
      movedToDlq: dead.length,
      movedToDlqBySqsAfterMs: movedMs,
      countedBeforeFix,
      countedAfterFirstRedrive,
      movedBySecondRedrive: tasks.Results?.[0]?.ApproximateNumberOfMessagesMoved,
      countedAfterSecondRedrive: await count(broken.keyId),
      firstRedriveCountedWithinMs: firstRedriveMs,
      duplicatesDropped: tally.duplicates,
    };
  }, 90_000);
});
