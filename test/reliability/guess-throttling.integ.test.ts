import { request } from 'node:http';
import { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ALBResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUESS_THROTTLE, ENV } from '../../contracts/config';
import { KeyApiMetric, SERVICE_NAMES } from '../../contracts/metric-names';
import { generateApiKey, hashApiKey } from '../../services/accounts/api-key';
import { SqsUsagePublisher } from '../../services/gate/publisher';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { albEvent, behindAlb, resultJson } from '../support/alb';
import { documentClient, engineClients } from '../support/aws';
import { recordFigures } from '../support/figures';
import { keyStore, tablesFrom } from '../support/key-api';
import { drainingMetrics, type MetricTotals } from '../support/metrics';
import { createTestQueue } from '../support/queues';

// One address floods key-api with checksum-valid unknown keys. Key-api runs with the shipped
// throttle (TOLLGATE_GUESS_* unset: 20 lookups of unknown keys per address per minute) over real
// DynamoDB Local; every KeyLookup read is counted at the client, by the key hash it asked for.

const GUESSES = 10_000;
const WORKERS = 16;
const BUDGET = DEFAULT_GUESS_THROTTLE.budget;
const WINDOW_MS = DEFAULT_GUESS_THROTTLE.windowMs;
/** Real keys another address presents for the first time during the flood: more than the budget. */
const NEIGHBOUR_KEYS = 25;
const GUESSER = '198.51.100.7';
const NEIGHBOUR = '198.51.100.8';

const endpoints = inject('endpoints');
const tables = tablesFrom(inject('env'));
const admin = engineClients(endpoints);
const store = keyStore(admin.dynamo, tables);

let accounts = 0;
/** An account with one active key, written by the real KeyStore. */
async function newKey(): Promise<string> {
  const accountId = `rel_guess_${process.pid}_${Date.now()}_${accounts++}`;
  await store.provisionAccount({
    accountId,
    email: `${accountId}@example.com`,
    userName: accountId,
    now: new Date(),
  });
  const created = await store.createKey({ accountId, name: 'guess-throttling', now: new Date() });
  if (!created.ok) throw new Error('no key');
  return created.value.secret.key;
}

/** KeyLookup reads as DynamoDB received them, by the hash each asked for. */
function countLookups(client: DynamoDBClient): string[] {
  const hashes: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'QueryCommand') {
        // Marshalled ({ S }) or not yet, depending on where the document client's step runs.
        const input = args.input as { ExpressionAttributeValues?: Record<string, { S?: string } | string> };
        const value = input.ExpressionAttributeValues?.[':h'];
        hashes.push(typeof value === 'string' ? value : (value?.S ?? '?'));
      }
      return next(args);
    },
    { step: 'build', name: 'countLookups' },
  );
  return hashes;
}

/**
 * A GET with the key, from a loopback address of our choosing (Linux routes all of 127/8 to lo):
 * `<status> <error code or ok>`.
 */
function httpGet(url: string, key: string, options: { localAddress?: string; xff?: string | string[] } = {}) {
  return new Promise<string>((resolve, reject) => {
    const req = request(
      url,
      {
        headers: { 'x-api-key': key, ...(options.xff ? { 'x-forwarded-for': options.xff } : {}) },
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          const body = JSON.parse(text) as { error?: { code?: string } };
          resolve(`${res.statusCode} ${body.error?.code ?? 'ok'}`);
        });
      },
    );
    req.on('error', reject).end();
  });
}

async function eachConcurrently<T>(
  items: readonly T[],
  workers: number,
  work: (item: T, i: number) => Promise<void>,
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i] as T, i);
      }
    }),
  );
}

describe(`guess throttling: ${BUDGET} lookups of unknown keys per address per ${WINDOW_MS / 1000} s and container`, () => {
  let queueUrl: string;
  beforeAll(async () => {
    queueUrl = (
      await createTestQueue(admin.sqs, 'guess-throttle', { visibilityTimeoutSeconds: 30, maxReceiveCount: 5 })
    ).queueUrl;
  });
  afterAll(() => {
    admin.dynamo.destroy();
    admin.sqs.destroy();
  });

  /**
   * One key-api container as handler.ts composes it (composeKeyApi over key-api's schema), with the
   * shipped windows and throttle, over a DynamoDB client whose reads are counted, and a clock the
   * test can move forward (the cache's and the throttle's: no waiting out a minute).
   */
  function keyApiContainer() {
    const { dynamo } = engineClients(endpoints);
    const lookups = countLookups(dynamo);
    let skewMs = 0;
    const metrics: MetricTotals = new Map();
    const config = loadKeyApiConfig({
      [ENV.accountsTable]: tables.accounts,
      [ENV.keysTable]: tables.keys,
      [ENV.usageTable]: tables.usage,
      [ENV.plansTable]: tables.plans,
      [ENV.keyPrefix]: 'tg',
      [ENV.usageQueueUrl]: queueUrl,
    });
    const { handler } = composeKeyApi(config, {
      clients: { dynamo: documentClient(dynamo) },
      publisher: new SqsUsagePublisher({ queueUrl, client: admin.sqs }),
      logger: new Logger({ serviceName: SERVICE_NAMES.keyApi, logLevel: 'SILENT' }),
      metrics: drainingMetrics(SERVICE_NAMES.keyApi, metrics),
      clock: { now: () => new Date(Date.now() + skewMs) },
    });
    return {
      handler,
      lookups,
      metrics,
      config,
      advance: (ms: number) => {
        skewMs += ms;
      },
      destroy: () => dynamo.destroy(),
    };
  }

  it(`${GUESSES.toLocaleString('en')} unknown keys from one address: ${BUDGET} reads, then 429s; cached and other addresses' keys still work`, async () => {
    const api = keyApiContainer();
    expect(api.config[ENV.guessBudget]).toBe(BUDGET);
    const cachedBefore = await newKey();
    // More than the budget: were real keys charged, the other address would be refused too.
    const neighbours = await Promise.all(Array.from({ length: NEIGHBOUR_KEYS }, newKey));
    const from = (key: string, ip: string) =>
      api.handler(albEvent({ method: 'GET', headers: { 'x-api-key': key, 'x-forwarded-for': ip } }));
    const label = (result: ALBResult) => `${result.statusCode} ${resultJson(result).error?.code ?? 'ok'}`;

    // A real key the guesser's address used before the flood: cached (and its read given back).
    expect(label(await from(cachedBefore, GUESSER))).toBe('200 ok');
    const readsBefore = api.lookups.length;

    const guesses = Array.from({ length: GUESSES }, () => generateApiKey('tg').key);
    const answers: string[] = Array(GUESSES);
    const retryAfter = new Set<string>();
    const during: string[] = [];
    const every = GUESSES / NEIGHBOUR_KEYS;
    const started = performance.now();
    await eachConcurrently(guesses, WORKERS, async (key, i) => {
      const result = await from(key, GUESSER);
      answers[i] = label(result);
      if (result.statusCode === 429) retryAfter.add(String(result.headers?.['retry-after']));
      if (i % every === every / 2) {
        // Meanwhile: another address's real key, never seen before (a read), and the key the
        // guesser's own address had cached before the flood.
        const other = neighbours[(i - every / 2) / every] as string;
        during.push(`other address, new key ${label(await from(other, NEIGHBOUR))}`);
        during.push(`same address, cached key ${label(await from(cachedBefore, GUESSER))}`);
      }
    });
    const floodMs = performance.now() - started;
    const throttledMetric = api.metrics.get(KeyApiMetric.guessesThrottled);

    const guessHashes = new Set(guesses.map(hashApiKey));
    const guessReads = api.lookups.slice(readsBefore).filter((hash) => guessHashes.has(hash)).length;
    const tally = (list: readonly string[]) =>
      Object.fromEntries([...new Set(list)].map((a) => [a, list.filter((b) => b === a).length]));

    // The budget is taken as each lookup is sent, so even 16 in flight cannot overdraw it: the
    // first BUDGET guesses (in the order sent) were read and answered 401, all others 429 unread.
    expect(guessReads).toBe(BUDGET);
    expect(answers.slice(0, BUDGET)).toEqual(Array(BUDGET).fill('401 unknown_key'));
    expect(tally(answers.slice(BUDGET))).toEqual({ '429 too_many_guesses': GUESSES - BUDGET });
    for (const seconds of retryAfter) {
      expect(Number(seconds)).toBeGreaterThanOrEqual(1);
      expect(Number(seconds)).toBeLessThanOrEqual(WINDOW_MS / 1000);
    }
    expect(throttledMetric).toBe(GUESSES - BUDGET);
    expect(tally(during)).toEqual({
      'other address, new key 200 ok': NEIGHBOUR_KEYS,
      'same address, cached key 200 ok': NEIGHBOUR_KEYS,
    });
    // Still spent: a new guess is refused without a read.
    const readsSpent = api.lookups.length;
    expect(label(await from(generateApiKey('tg').key, GUESSER))).toBe('429 too_many_guesses');
    expect(api.lookups.length).toBe(readsSpent);

    // After the window the address gets lookups again: BUDGET more, no more.
    api.advance(WINDOW_MS);
    const later = Array.from({ length: BUDGET + 10 }, () => generateApiKey('tg').key);
    const laterAnswers: string[] = [];
    for (const key of later) laterAnswers.push(label(await from(key, GUESSER)));
    expect(tally(laterAnswers)).toEqual({ '401 unknown_key': BUDGET, '429 too_many_guesses': 10 });
    expect(api.lookups.length - readsSpent).toBe(BUDGET);
    api.destroy();

    await recordFigures('guess-throttling', {
      parameters: {
        guesses: GUESSES,
        workers: WORKERS,
        otherAddressNewKeys: NEIGHBOUR_KEYS,
        budget: BUDGET,
        windowMs: WINDOW_MS,
        negativeWindowMs: api.config[ENV.keyCacheNegativeMs],
      },
      dynamoDbReadsForGuesses: guessReads,
      readsPerGuess: Number((guessReads / GUESSES).toFixed(4)),
      answers: tally(answers),
      keyGuessesThrottledMetric: throttledMetric,
      retryAfterSeconds: [...retryAfter].map(Number).sort((a, b) => a - b),
      duringFlood: tally(during),
      afterWindow: { answers: tally(laterAnswers), reads: api.lookups.length - readsSpent },
      floodMs: Math.round(floodMs),
    });
  });

  it('over HTTP through the local ALB: left-most x-forwarded-for entries the guesser writes do not help it', async () => {
    const api = keyApiContainer();
    const alb = await behindAlb(api.handler);
    const [cachedBefore, neighbours] = [await newKey(), await newKey()];
    const get = (key: string, options: { localAddress?: string; xff?: string } = {}) =>
      httpGet(alb.endpoint, key, options);
    try {
      expect(await get(cachedBefore)).toBe('200 ok');
      const readsBefore = api.lookups.length;
      const guesses = Array.from({ length: 1000 }, () => generateApiKey('tg').key);
      const answers: string[] = Array(guesses.length);
      // Each guess claims another client in x-forwarded-for; the ALB appends the real one.
      await eachConcurrently(guesses, 8, async (key, i) => {
        answers[i] = await get(key, { xff: `10.${i >> 8}.${i & 255}.1` });
      });
      const reads = api.lookups.length - readsBefore;
      expect(reads).toBe(BUDGET);
      const count = (a: string) => answers.filter((b) => b === a).length;
      expect([count('401 unknown_key'), count('429 too_many_guesses')]).toEqual([
        BUDGET,
        guesses.length - BUDGET,
      ]);
      // The same address's cached key, and another address's new key, are served.
      expect(await get(cachedBefore)).toBe('200 ok');
      expect(await get(neighbours, { localAddress: '127.0.0.2' })).toBe('200 ok');
      expect(await get(generateApiKey('tg').key, { localAddress: '127.0.0.2' })).toBe('401 unknown_key');
      await recordFigures('guess-throttling-http', {
        parameters: { guesses: guesses.length, workers: 8, budget: BUDGET },
        dynamoDbReadsForGuesses: reads,
        answers: {
          '401 unknown_key': count('401 unknown_key'),
          '429 too_many_guesses': count('429 too_many_guesses'),
        },
      });
    } finally {
      await alb.close();
      api.destroy();
    }
  });

  it('the ALB-written entry as ip:port, and x-forwarded-for twice, buy no budget of their own', async () => {
    const api = keyApiContainer();
    const alb = await behindAlb(api.handler);
    const label = (result: ALBResult) => `${result.statusCode} ${resultJson(result).error?.code ?? 'ok'}`;
    const tally = (list: readonly string[]) =>
      Object.fromEntries([...new Set(list)].map((a) => [a, list.filter((b) => b === a).length]));
    const GUESSES_EACH = 500;
    try {
      const readsOf = async (send: (key: string, i: number) => Promise<string>) => {
        const before = api.lookups.length;
        const answers: string[] = [];
        for (let i = 0; i < GUESSES_EACH; i++) answers.push(await send(generateApiKey('tg').key, i));
        return { reads: api.lookups.length - before, answers: tally(answers) };
      };
      // (a) An ALB that keeps the client port (routing.http.xff_client_port.enabled) appends
      // `ip:port`, the port new with each connection; the guesser rotates its own entries too.
      const withPort = await readsOf(async (key, i) =>
        label(
          await api.handler(
            albEvent({
              method: 'GET',
              headers: {
                'x-api-key': key,
                'x-forwarded-for': `10.${i >> 8}.${i & 255}.1, ${GUESSER}:${20_000 + i}`,
              },
            }),
          ),
        ),
      );
      // The same address without a port is the same client, spent.
      const samePlain = label(
        await api.handler(
          albEvent({
            method: 'GET',
            headers: { 'x-api-key': generateApiKey('tg').key, 'x-forwarded-for': GUESSER },
          }),
        ),
      );
      // (b) Multi-value ALB events: the header twice, a new address in the last one each time.
      const twice = await readsOf(async (key, i) =>
        label(
          await api.handler({
            ...albEvent({ method: 'GET', headers: {} }),
            headers: undefined,
            multiValueHeaders: {
              'x-api-key': [key],
              'x-forwarded-for': [`10.7.${i >> 8}.${i & 255}`, `10.8.${i >> 8}.${i & 255}`],
            },
          }),
        ),
      );
      // (c) Over HTTP through the local ALB, from its own loopback address: two headers, both
      // rotated; the adapter keeps the last (as an ALB without multi-value headers) and appends the
      // connection's address, so the client is still found.
      const overHttp = await readsOf((key, i) =>
        httpGet(alb.endpoint, key, {
          localAddress: '127.0.0.5',
          xff: [`10.5.${i >> 8}.${i & 255}`, `10.6.${i >> 8}.${i & 255}:${1000 + i}`],
        }),
      );
      // Another address still has its own budget.
      const neighbour = label(
        await api.handler(
          albEvent({
            method: 'GET',
            headers: { 'x-api-key': generateApiKey('tg').key, 'x-forwarded-for': `${NEIGHBOUR}:443` },
          }),
        ),
      );
      for (const run of [withPort, twice, overHttp]) {
        expect(run.reads).toBe(BUDGET);
        expect(run.answers).toEqual({
          '401 unknown_key': BUDGET,
          '429 too_many_guesses': GUESSES_EACH - BUDGET,
        });
      }
      expect(samePlain).toBe('429 too_many_guesses');
      expect(neighbour).toBe('401 unknown_key');
      await recordFigures('guess-throttling-forwarded', {
        parameters: { guessesEach: GUESSES_EACH, budget: BUDGET },
        clientPort: withPort,
        clientPortSameAddressWithoutPort: samePlain,
        headerTwice: twice,
        headerTwiceOverHttp: overHttp,
        otherAddress: neighbour,
      });
    } finally {
      await alb.close();
      api.destroy();
    }
  });

  it("the stack's example API (Hono on Lambda behind the local ALB) throttles the same way", async () => {
    // Its own loopback addresses: the stack is shared with the run's other tests, which use 127.0.0.1.
    const guesser = { localAddress: '127.0.0.3' };
    const url = `${endpoints.exampleApi}/v1/rates/EUR`;
    const answers: string[] = [];
    for (let i = 0; i < BUDGET + 30; i++) {
      answers.push(await httpGet(url, generateApiKey('tg').key, { ...guesser, xff: `10.1.0.${i}` }));
    }
    expect(answers.slice(0, BUDGET)).toEqual(Array(BUDGET).fill('401 unknown_key'));
    expect(new Set(answers.slice(BUDGET))).toEqual(new Set(['429 too_many_guesses']));
    expect(await httpGet(url, await newKey(), { localAddress: '127.0.0.4' })).toBe('200 ok');
  });
});
