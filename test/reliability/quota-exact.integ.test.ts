import { Logger } from '@aws-lambda-powertools/logger';
import type { SQSEvent } from 'aws-lambda';
import { describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { utcDay } from '../../contracts/usage-event';
import { SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { generateApiKey } from '../../services/accounts/api-key';
import { PlanStore } from '../../services/accounts/plan-store';
import { composeGate, loadGateConfig } from '../../services/gate/index';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { documentClient } from '../../services/platform/aws-clients';
import { discardMetrics } from '../../services/platform/metrics';
import { UsageReader } from '../../services/usage/usage-reader';
import { UsageStore } from '../../services/usage/usage-store';
import { albEvent, behindAlb } from '../support/alb';
import { countRequests } from '../support/aws';
import { recordFigures } from '../support/figures';
import { endpoints, localClients, signUpAndSignIn, userApi } from '../support/local-stack';
import { meteringConsumer } from '../support/metering-consumer';
import { createTestQueue } from '../support/queues';
import { eventually, sleep } from '../support/wait';

// Quotas exact for one container, whatever the pipeline's lag (services/gate/limits.ts): a gate
// container keeps what it published until the counters hold it, which it can tell because
// metering counts each container's share of an account's period apart. And a quota check reads
// one item (with the container's share: one TransactGetItems) however many keys and days.

const env = inject('env');
const QUOTA = 5;
/** How long metering is stopped while the client keeps sending (the 30 s). */
const STOPPED_MS = 30_000;
const PACE_MS = 400;

async function quotaPlanFor(label: string, quota: { requests: number; period: 'day' | 'month' }) {
  const dynamo = documentClient(inject('aws'));
  const owner = await signUpAndSignIn(label);
  const accountId = ((await userApi(owner.idToken, 'GET', '/me')).body as { userId: string }).userId;
  const plans = new PlanStore({
    client: dynamo,
    plansTable: env[ENV.plansTable] as string,
    accountsTable: env[ENV.accountsTable] as string,
  });
  const planId = `${label}-${Date.now()}`;
  await plans.putPlan(planId, { name: label, quota }, new Date());
  expect(await plans.assignPlan(accountId, planId)).toBe(true);
  return { owner, accountId, dynamo };
}

describe('quotas exact for one container', () => {
  it(`one client, one key-api container, one request at a time against a quota of ${QUOTA}: exactly ${QUOTA} × 200, also while metering is stopped for ${STOPPED_MS / 1000} s`, async () => {
    const { owner, accountId, dynamo } = await quotaPlanFor('quota-exact', {
      requests: QUOTA,
      period: 'day',
    });
    const created = await userApi(owner.idToken, 'POST', '/keys', { name: 'one-at-a-time' });
    expect(created.status).toBe(201);
    const { key } = created.body as { key: string };

    // A queue of the test's own that no consumer reads yet: metering is stopped, every event waits.
    const clients = localClients();
    const queue = await createTestQueue(clients.sqs, 'quota-exact', {
      visibilityTimeoutSeconds: 30,
      maxReceiveCount: 5,
    });
    const keyApi = composeKeyApi(loadKeyApiConfig({ ...env, [ENV.usageQueueUrl]: queue.queueUrl }), {
      aws: inject('aws'),
      logger: new Logger({ serviceName: 'quota-exact', logLevel: 'SILENT' }),
      metrics: discardMetrics,
    });
    const alb = await behindAlb(keyApi.handler);
    const reader = new UsageReader({ client: dynamo, table: env[ENV.usageTable] as string });
    const counted = () => reader.usedInPeriod(accountId, 'day', new Date());
    const send = async () =>
      (await fetch(alb.endpoint, { method: 'GET', headers: { 'x-api-key': key } })).status;

    const stopped: number[] = [];
    const afterRestart: number[] = [];
    let restartedAfterMs = 0;
    try {
      const started = Date.now();
      while (Date.now() - started < STOPPED_MS) {
        stopped.push(await send());
        await sleep(PACE_MS);
      }
      expect(await counted()).toBe(0);

      // Metering starts: the waiting events are counted, and the container, reading its own share
      // in the counters, neither lets more through nor counts its own twice.
      const { handler, countedSoFar } = meteringConsumer('sqs', queue.dlqUrl);
      const poller = new SqsPoller({
        sqs: clients.sqs,
        queueUrl: queue.queueUrl,
        queueArn: queue.queueArn,
        region: endpoints().region,
        handler: (event: SQSEvent) => handler(event),
      });
      const restartedAt = Date.now();
      poller.start();
      try {
        await eventually(async () => countedSoFar() >= QUOTA, 20_000, 100);
        restartedAfterMs = Date.now() - restartedAt;
        for (let i = 0; i < 10; i++) {
          afterRestart.push(await send());
          await sleep(PACE_MS);
        }
        await sleep(2000);
      } finally {
        await poller.stop();
      }
    } finally {
      await alb.close();
    }

    const accepted = stopped.filter((s) => s === 200).length;
    expect(stopped.slice(0, QUOTA)).toEqual(Array(QUOTA).fill(200));
    expect(new Set(stopped.slice(QUOTA))).toEqual(new Set([429]));
    expect(afterRestart).toEqual(Array(10).fill(429));
    const total = await counted();
    expect(total).toBe(QUOTA);
    expect(await reader.total({ accountId }, utcDay(Date.now()), utcDay(Date.now()))).toBe(QUOTA);
    await recordFigures('quota-exact', {
      parameters: { quota: QUOTA, stoppedMs: STOPPED_MS, paceMs: PACE_MS, afterRestart: afterRestart.length },
      sentWhileStopped: stopped.length,
      acceptedWhileStopped: accepted,
      refusedWhileStopped: stopped.filter((s) => s === 429).length,
      acceptedAfterRestart: afterRestart.filter((s) => s === 200).length,
      countedAfterRestartMs: restartedAfterMs,
      counted: total,
    });
  }, 120_000);

  it('a quota check reads one item however many keys and days: 200 keys × 30 days', async () => {
    const KEYS = 200;
    const DAYS = 30;
    const { accountId } = await quotaPlanFor('quota-reads', { requests: 1_000_000, period: 'month' });
    // 30 days of history for 200 keys, written by metering's own write path (the acceptance window
    // is the consumer's, before this: UsageStore itself takes any day), one event per key and day.
    const clients = localClients();
    const table = env[ENV.usageTable] as string;
    const store = new UsageStore({ client: clients.doc, table });
    const now = Date.now();
    const parts = [];
    for (let d = 0; d < DAYS; d++) {
      const ts = now - d * 86_400_000;
      for (let k = 0; k < KEYS; k++) {
        parts.push({
          owner: { accountId, keyId: `key_reads_${k}`, day: utcDay(ts) },
          events: [{ id: `reads_${accountId}_${d}_${k}`.padEnd(16, '0'), ts, units: 1 }],
          recordIds: [],
        });
      }
    }
    const thisMonth = utcDay(now).slice(0, 7);
    const inThisMonth = parts.filter((p) => p.owner.day.startsWith(thisMonth)).length;
    // 48 parts a transaction: 48 marks, 48 counters, the period item.
    for (let i = 0; i < parts.length; i += 48)
      await store.applyTransaction(parts.slice(i, i + 48), new Date());

    // The gate's quota check, on a client whose requests are counted.
    const gateClients = localClients();
    const reads = countRequests(gateClients.dynamo);
    let itemsRead = 0;
    gateClients.dynamo.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        const responses = (out.output as { Responses?: unknown[] }).Responses;
        itemsRead += Array.isArray(responses) ? responses.length : 1;
        return out;
      },
      { step: 'initialize', name: 'itemsRead' },
    );
    const config = loadGateConfig(env);
    const gate = composeGate(config, {
      aws: inject('aws'),
      clients: { dynamo: gateClients.doc },
      // Keys and terms as a warm container has them cached: what is counted is the quota's read.
      lookup: async () => ({ found: true, record: { accountId, keyId: 'key_reads_0', status: 'active' } }),
      terms: async () => ({
        found: true,
        record: {
          status: 'active',
          plan: {
            planId: 'reads',
            name: 'Reads',
            updatedAt: '',
            quota: { requests: inThisMonth + 1, period: 'month' },
          },
        },
      }),
      publisher: { publish: async () => undefined },
      // Its refusal summary would be one more request on the counted client, seconds later.
      refusals: { refused: () => undefined },
      logger: new Logger({ serviceName: 'quota-reads', logLevel: 'SILENT' }),
      metrics: discardMetrics,
    });
    const handler = gate.albHandler(async () => ({ statusCode: 200, body: 'ok' }));
    const call = () =>
      handler(albEvent({ method: 'GET', path: '/x', headers: { 'x-api-key': generateApiKey('tg').key } }));
    const first = await call();
    const second = await call();
    // The counters hold this month's 200 × days events; the quota leaves room for one more.
    expect(first.statusCode).toBe(200);
    expect(second.statusCode).toBe(429);
    expect([...reads]).toEqual([['TransactGetItemsCommand', 1]]);
    expect(itemsRead).toBe(2);

    // What the same figure cost before: a Query of every key-day counter of the month.
    const queryClients = localClients();
    const queried = countRequests(queryClients.dynamo);
    let queryItems = 0;
    queryClients.dynamo.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        queryItems += (out.output as { Count?: number }).Count ?? 0;
        return out;
      },
      { step: 'initialize', name: 'queryItems' },
    );
    const month = await new UsageReader({ client: queryClients.doc, table }).total(
      { accountId },
      `${thisMonth}-01`,
      utcDay(now),
    );
    expect(month).toBe(inThisMonth);

    // GET /keys' all-time totals: folded once, then bounded by keys and the late window.
    const totalsClients = localClients();
    let totalsItems = 0;
    totalsClients.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'QueryCommand')
          totalsItems += (out.output as { Count?: number }).Count ?? 0;
        return out;
      },
      { step: 'initialize', name: 'totalsItems' },
    );
    const totalsReader = new UsageReader({ client: totalsClients.doc, table });
    const firstTotals = await totalsReader.keyTotals(accountId);
    const firstRead = totalsItems;
    totalsItems = 0;
    const secondTotals = await totalsReader.keyTotals(accountId);
    const secondRead = totalsItems;
    expect(secondTotals).toEqual(firstTotals);
    expect(firstTotals.size).toBe(KEYS);
    for (const total of firstTotals.values()) expect(total.count).toBe(DAYS);
    // After the fold: one item per key, and the counters of the days still open (the late window).
    expect(secondRead).toBeLessThanOrEqual(KEYS + 1 + KEYS * 4);
    await recordFigures('quota-reads', {
      parameters: { keys: KEYS, days: DAYS },
      quotaCheckRequests: [...reads.values()].reduce((a, b) => a + b, 0),
      quotaCheckItems: itemsRead,
      monthQueryRequests: [...queried.values()].reduce((a, b) => a + b, 0),
      monthQueryItems: queryItems,
      keyTotalsFirstItems: firstRead,
      keyTotalsAfterFoldItems: secondRead,
    });
  }, 120_000);
});
