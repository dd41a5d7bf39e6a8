import { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../contracts/config';
import type { Plan } from '../../contracts/plans';
import { generateApiKey } from '../../services/accounts/api-key';
import { composeGate, loadGateConfig } from '../../services/gate/index';
import type { AccountTerms } from '../../services/gate/limits';
import { RefusalTally, type RefusalWriter } from '../../services/gate/refusal-tally';
import type { RefusalCount, RefusalReason } from '../../services/usage/refusals';
import { albEvent } from '../support/alb';

// The gate's per-container tally of refusals (services/gate/refusal-tally.ts): what it writes,
// when, what it keeps when a write fails, and its bound. Fake timers; nothing reaches AWS.

const T0 = Date.parse('2026-12-07T10:59:58.000Z');
const HOUR = 3_600_000;
const INTERVAL_MS = 5000;
const KEY_1 = { accountId: 'acc_1', keyId: 'key_1' };
const KEY_2 = { accountId: 'acc_1', keyId: 'key_2' };

/** A writer that records each summary it is given and fails the items the test says. */
function writer() {
  const summaries: RefusalCount[][] = [];
  const state = { failAll: false, failKey: undefined as string | undefined };
  const write: RefusalWriter = async (counts) => {
    summaries.push([...counts]);
    if (state.failAll) return { unwritten: counts, errors: [new Error('DynamoDB unavailable')] };
    const unwritten = counts.filter((c) => c.keyId === state.failKey);
    return { unwritten, errors: unwritten.length ? [new Error('throttled')] : [] };
  };
  return { write, summaries, state };
}

const sorted = (counts: readonly RefusalCount[]) =>
  [...counts].sort((a, b) =>
    `${a.keyId}${a.hourStart}${a.reason}`.localeCompare(`${b.keyId}${b.hourStart}${b.reason}`),
  );

const silent = new Logger({ serviceName: 'refusal-tally-test', logLevel: 'SILENT' });

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('RefusalTally', () => {
  it('sums refusals per key, UTC hour and reason, and writes one summary per interval, none before it', async () => {
    const w = writer();
    const tally = new RefusalTally({ write: w.write, flushIntervalMs: INTERVAL_MS, logger: silent });
    const refuse = (caller: typeof KEY_1, reason: RefusalReason) => tally.refused(caller, reason, Date.now());
    refuse(KEY_1, 'rate_limited');
    refuse(KEY_1, 'rate_limited');
    refuse(KEY_2, 'quota_exceeded');
    await vi.advanceTimersByTimeAsync(2500); // now 11:00:00.500: a new UTC hour
    refuse(KEY_1, 'rate_limited');
    refuse(KEY_1, 'account_suspended');
    expect(tally.pending).toBe(5);
    await vi.advanceTimersByTimeAsync(INTERVAL_MS - 2501);
    expect(w.summaries).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);

    const tenOClock = Date.parse('2026-12-07T10:00:00Z');
    expect(w.summaries).toHaveLength(1);
    expect(sorted(w.summaries[0] ?? [])).toEqual(
      sorted([
        { ...KEY_1, hourStart: tenOClock, reason: 'rate_limited', count: 2 },
        { ...KEY_2, hourStart: tenOClock, reason: 'quota_exceeded', count: 1 },
        { ...KEY_1, hourStart: tenOClock + HOUR, reason: 'rate_limited', count: 1 },
        { ...KEY_1, hourStart: tenOClock + HOUR, reason: 'account_suspended', count: 1 },
      ]),
    );
    expect(tally.pending).toBe(0);
    // Idle: nothing is written and no timer runs until the next refusal.
    await vi.advanceTimersByTimeAsync(10 * INTERVAL_MS);
    expect(w.summaries).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps what a failed flush could not write and adds it to the next summary', async () => {
    const w = writer();
    const tally = new RefusalTally({ write: w.write, flushIntervalMs: INTERVAL_MS, logger: silent });
    w.state.failAll = true;
    for (let i = 0; i < 3; i++) tally.refused(KEY_1, 'rate_limited', Date.now());
    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(w.summaries).toHaveLength(1);
    expect(tally.pending).toBe(3);

    w.state.failAll = false;
    tally.refused(KEY_1, 'rate_limited', T0 + 1000); // the same UTC hour as the kept ones
    // The failed flush re-armed the timer: the retry needs no new refusal, and comes one interval later.
    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(w.summaries).toHaveLength(2);
    expect(w.summaries[1]).toEqual([
      { ...KEY_1, hourStart: Date.parse('2026-12-07T10:00:00Z'), reason: 'rate_limited', count: 4 },
    ]);
    expect(tally.pending).toBe(0);
  });

  it('a partly failed flush keeps only the items that were not written', async () => {
    const w = writer();
    const tally = new RefusalTally({ write: w.write, flushIntervalMs: INTERVAL_MS, logger: silent });
    w.state.failKey = 'key_2';
    tally.refused(KEY_1, 'quota_exceeded', Date.now());
    tally.refused(KEY_2, 'quota_exceeded', Date.now());
    tally.refused(KEY_2, 'quota_exceeded', Date.now());
    await tally.flush();
    expect(tally.pending).toBe(2);
    w.state.failKey = undefined;
    await tally.flush();
    expect(w.summaries[1]).toEqual([
      { ...KEY_2, hourStart: Date.parse('2026-12-07T10:00:00Z'), reason: 'quota_exceeded', count: 2 },
    ]);
  });

  it('a writer that throws loses nothing either', async () => {
    let calls = 0;
    const written: RefusalCount[] = [];
    const tally = new RefusalTally({
      write: async (counts) => {
        if (calls++ === 0) throw new Error('bug in the writer');
        written.push(...counts);
        return { unwritten: [], errors: [] };
      },
      logger: silent,
    });
    tally.refused(KEY_1, 'account_suspended', Date.now());
    await tally.flush();
    expect(tally.pending).toBe(1);
    await tally.flush();
    expect(written.map((c) => c.count)).toEqual([1]);
  });

  it('holds at most maxEntries distinct counts: further ones are dropped and counted, known ones still add', async () => {
    const w = writer();
    w.state.failAll = true;
    const tally = new RefusalTally({
      write: w.write,
      flushIntervalMs: INTERVAL_MS,
      maxEntries: 2,
      logger: silent,
    });
    tally.refused(KEY_1, 'rate_limited', Date.now());
    tally.refused(KEY_2, 'rate_limited', Date.now());
    tally.refused({ accountId: 'acc_1', keyId: 'key_3' }, 'rate_limited', Date.now());
    tally.refused(KEY_1, 'rate_limited', Date.now());
    await tally.flush(); // fails: both entries kept, still within the bound
    tally.refused(KEY_1, 'quota_exceeded', Date.now());
    expect(tally.pending).toBe(3);
    expect(tally.dropped).toBe(2);
  });

  it('its timer does not keep the process alive', () => {
    const unref = vi.fn();
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation((() => ({ unref })) as never);
    try {
      const tally = new RefusalTally({ write: writer().write, logger: silent });
      tally.refused(KEY_1, 'rate_limited', Date.now());
      tally.refused(KEY_1, 'rate_limited', Date.now());
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.calls[0]?.[1]).toBe(5000);
      expect(unref).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('the gate reports its plan refusals, and only those', () => {
  const CONFIG = loadGateConfig({
    [ENV.accountsTable]: 'tollgate-test-accounts',
    [ENV.keysTable]: 'tollgate-test-keys',
    [ENV.usageTable]: 'tollgate-test-usage',
    [ENV.plansTable]: 'tollgate-test-plans',
    [ENV.usageQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/tollgate-test-usage',
  });

  function gateWith(terms: AccountTerms) {
    const key = generateApiKey('tg');
    const refused: { accountId: string; keyId: string; reason: RefusalReason; atMs: number }[] = [];
    const published: unknown[] = [];
    const tollgate = composeGate(CONFIG, {
      clock: { now: () => new Date(Date.now()) },
      lookup: async (hash) =>
        hash === key.keyHash
          ? { found: true, record: { accountId: 'acc_1', keyId: 'key_1', status: 'active' } }
          : { found: false },
      terms: async () => ({ found: true, record: terms }),
      readUsage: async () => ({ used: 0, byProducer: 0 }),
      publisher: { publish: async (event) => void published.push(event) },
      refusals: { refused: (caller, reason, atMs) => refused.push({ ...caller, reason, atMs }) },
      logger: silent,
      metrics: { addMetric: () => undefined, endInvocation: () => undefined },
    });
    const handler = tollgate.albHandler(async () => ({ statusCode: 200, body: 'ok' }), {
      routes: ['GET /v1/things'],
    });
    const call = (apiKey = key.key) =>
      handler(albEvent({ method: 'GET', path: '/v1/things', headers: { 'x-api-key': apiKey } }));
    return { call, refused, published };
  }

  const plan = (body: Omit<Plan, 'planId' | 'updatedAt'>): Plan => ({
    planId: 'test',
    updatedAt: '2026-12-01T00:00:00.000Z',
    ...body,
  });

  it('a rate limit of 2: the third answer is a 429, reported once as rate_limited at the time of the request, never published', async () => {
    vi.useRealTimers();
    const g = gateWith({
      status: 'active',
      plan: plan({ name: 'Tiny', rateLimit: { requests: 2, perSeconds: 60, scope: 'key' } }),
    });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await g.call()).statusCode);
    expect(statuses).toEqual([200, 200, 429]);
    expect(g.published).toHaveLength(2);
    expect(g.refused).toEqual([
      { accountId: 'acc_1', keyId: 'key_1', reason: 'rate_limited', atMs: expect.any(Number) },
    ]);
    expect(Math.abs((g.refused[0]?.atMs ?? 0) - Date.now())).toBeLessThan(5000);
  });

  it('a suspended account: 403, reported as account_suspended; an unknown key is not a refusal of any key', async () => {
    vi.useRealTimers();
    const g = gateWith({ status: 'suspended', plan: plan({ name: 'Open' }) });
    expect((await g.call()).statusCode).toBe(403);
    expect((await g.call(generateApiKey('tg').key)).statusCode).toBe(401);
    expect(g.refused.map((r) => r.reason)).toEqual(['account_suspended']);
    expect(g.published).toEqual([]);
  });
});
