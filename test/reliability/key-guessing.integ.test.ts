import { request } from 'node:http';
import type { SQSClient } from '@aws-sdk/client-sqs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KeyApiMetric } from '../../contracts/metric-names';
import { generateApiKey, isWellFormedApiKey } from '../../services/accounts/api-key';
import { DEFAULT_WINDOWS } from '../../services/gate/key-cache';
import { SqsUsagePublisher } from '../../services/gate/publisher';
import { albEvent, behindAlb, resultJson } from '../support/alb';
import { countRequests, engineClients } from '../support/aws';
import { recordFigures } from '../support/figures';
import { buildKeyApi, type KeyApiUnderTest, tablesFrom } from '../support/key-api';
import { createTestQueue, queueDepth } from '../support/queues';
import { sleep } from '../support/wait';

const GUESSES = 10_000;
const WORKERS = 16;

/** Guesses an attacker would try: noise, the right shape with a wrong checksum, typos of real keys. */
function checksumInvalidGuesses(count: number): string[] {
  const base62 = fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz');
  const rightShape = fc.string({ unit: base62, minLength: 28, maxLength: 28 }).map((s) => `tg_${s}`);
  const typo = fc
    .tuple(fc.nat(27), fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'))
    .map(([at, c]) => {
      const { key } = generateApiKey('tg');
      const i = 3 + at;
      const swapped = key[i] === c ? (c === 'a' ? 'b' : 'a') : c;
      return `${key.slice(0, i)}${swapped}${key.slice(i + 1)}`;
    });
  const guess = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.string({ unit: 'binary', maxLength: 80 }),
    rightShape,
    typo,
    generateTruncatedOrPadded(),
    fc.constant(generateApiKey('other').key),
  );
  return fc.sample(guess, { numRuns: count, seed: 7 });
}

function generateTruncatedOrPadded() {
  return fc.boolean().map((truncate) => {
    const { key } = generateApiKey('tg');
    return truncate ? key.slice(0, -1) : `${key}A`;
  });
}

/** A GET with the key, from `localAddress` if given: its status and error code. */
function getFrom(
  url: string,
  key: string,
  localAddress?: string,
): Promise<{ status?: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { headers: { 'x-api-key': key }, ...(localAddress ? { localAddress } : {}) },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          const body = JSON.parse(text) as { error?: { code?: string } };
          resolve({ status: res.statusCode, code: body.error?.code });
        });
      },
    );
    req.on('error', reject).end();
  });
}

async function eachConcurrently<T>(items: readonly T[], workers: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

describe('key guessing: the checksum and the negative cache keep guesses off DynamoDB', () => {
  const tables = tablesFrom(inject('env'));
  const clients = engineClients(inject('endpoints'));
  let queueUrl: string;
  let publisherSqs: SQSClient;

  beforeAll(async () => {
    queueUrl = (
      await createTestQueue(clients.sqs, 'guess', { visibilityTimeoutSeconds: 30, maxReceiveCount: 5 })
    ).queueUrl;
    publisherSqs = clients.sqs;
  });
  afterAll(() => {
    clients.sqs.destroy();
  });

  /** A key-api container over a DynamoDB client whose every request is counted. */
  function countedKeyApi(): { api: KeyApiUnderTest; requests: Map<string, number>; destroy: () => void } {
    const { dynamo } = engineClients(inject('endpoints'));
    const requests = countRequests(dynamo);
    const api = buildKeyApi({
      dynamo,
      tables,
      publisher: new SqsUsagePublisher({ queueUrl, client: publisherSqs }),
    });
    return { api, requests, destroy: () => dynamo.destroy() };
  }

  const present = (api: KeyApiUnderTest, key: string, from = '127.0.0.1') =>
    api.handler(albEvent({ method: 'GET', headers: { 'x-api-key': key, 'x-forwarded-for': from } }));
  /**
   * The unknown-key scenarios are a guesser with many addresses (a botnet; WAF rate rules are for
   * it): one address per key, so each stays far inside the gate's per-address guess budget
   * (guess-throttle.ts, 20 a minute; one address's flood is guess-throttling.integ.test.ts) and what
   * is measured is the negative cache alone. Addresses from 198.18.0.0/15, the benchmarking range.
   */
  const addresses = new Map<string, string>();
  const addressOf = (key: string) => {
    let address = addresses.get(key);
    if (!address) {
      const i = addresses.size;
      address = `198.18.${i >> 8}.${i & 255}`;
      addresses.set(key, address);
    }
    return address;
  };

  it(`${GUESSES.toLocaleString('en')} checksum-invalid guesses: all 401, zero DynamoDB requests`, async () => {
    const { api, requests, destroy } = countedKeyApi();
    const guesses = checksumInvalidGuesses(GUESSES);
    expect(guesses.filter((g) => isWellFormedApiKey(g.trim(), 'tg'))).toEqual([]);
    const codes = new Map<string, number>();
    const started = performance.now();
    await eachConcurrently(guesses, WORKERS, async (guess) => {
      const result = await present(api, guess);
      expect(result.statusCode, JSON.stringify(guess)).toBe(401);
      const code = resultJson(result).error?.code ?? '?';
      codes.set(code, (codes.get(code) ?? 0) + 1);
    });
    const ms = performance.now() - started;
    destroy();

    expect([...codes.keys()].sort()).toEqual(['malformed_key', 'missing_key']);
    expect(Object.fromEntries(requests)).toEqual({});
    expect(api.metrics.get(KeyApiMetric.checks.malformed)).toBe(codes.get('malformed_key'));
    await recordFigures('key-guessing-invalid', {
      parameters: { guesses: GUESSES, workers: WORKERS },
      answers: Object.fromEntries(codes),
      dynamoDbRequests: [...requests.values()].reduce((a, b) => a + b, 0),
      msPerGuess: Number((ms / GUESSES).toFixed(3)),
    });
  });

  it(`${GUESSES.toLocaleString('en')} checksum-valid unknown keys: all 401, one read each per negative window`, async () => {
    const { api, requests, destroy } = countedKeyApi();
    const keys = Array.from({ length: GUESSES }, () => generateApiKey('tg').key);
    const reads = () => requests.get('QueryCommand') ?? 0;
    let refused = 0;
    const started = performance.now();
    // Each key twice, the second time at once: the negative cache answers it.
    await eachConcurrently(keys, WORKERS, async (key) => {
      for (let i = 0; i < 2; i++) {
        const result = await present(api, key, addressOf(key));
        if (result.statusCode === 401 && resultJson(result).error?.code === 'unknown_key') refused++;
      }
    });
    const firstPassMs = performance.now() - started;
    expect(refused).toBe(2 * GUESSES);
    expect(reads()).toBe(GUESSES);

    // A burst of concurrent requests for one new key shares a single read.
    const burstKeys = Array.from({ length: 100 }, () => generateApiKey('tg').key);
    await Promise.all(
      burstKeys.flatMap((key) => Array.from({ length: 10 }, () => present(api, key, addressOf(key)))),
    );
    expect(reads()).toBe(GUESSES + burstKeys.length);

    // After the negative window a guess costs one read again: one read per key per window.
    const again = keys.slice(0, 100);
    await sleep(DEFAULT_WINDOWS.negativeMs + 100);
    await Promise.all(again.map((key) => present(api, key, addressOf(key))));
    expect(reads()).toBe(GUESSES + burstKeys.length + again.length);
    destroy();

    const writesOrOthers = [...requests.entries()].filter(([name]) => name !== 'QueryCommand');
    expect(writesOrOthers).toEqual([]);
    expect(await queueDepth(clients.sqs, queueUrl)).toBe(0); // nothing was billed
    const requestsMade = 2 * GUESSES + burstKeys.length * 10 + again.length;
    expect(api.metrics.get(KeyApiMetric.checks.unknown)).toBe(requestsMade);
    await recordFigures('key-guessing-unknown', {
      parameters: {
        guesses: GUESSES,
        burstKeys: burstKeys.length,
        burstConcurrency: 10,
        againKeys: again.length,
        negativeWindowMs: DEFAULT_WINDOWS.negativeMs,
      },
      requests: api.metrics.get(KeyApiMetric.checks.unknown),
      unknownKeyAnswers: refused,
      dynamoDbReads: reads(),
      // Each key presented in a negative window: the guesses, the burst's keys, the keys again.
      readsPerKeyPerWindow: reads() / (GUESSES + burstKeys.length + again.length),
      otherDynamoDbRequests: writesOrOthers.reduce((n, [, count]) => n + count, 0),
      queueDepth: await queueDepth(clients.sqs, queueUrl),
      readsPerSecondDynamoDbLocal: Math.round(GUESSES / (firstPassMs / 1000)),
    });
  });

  it('the same over HTTP through the local ALB: a sample of 300 + 300', async () => {
    const { api, requests, destroy } = countedKeyApi();
    const alb = await behindAlb(api.handler);
    try {
      // HTTP can only send printable ASCII in a header; the handler-level test covers the rest.
      const invalid = checksumInvalidGuesses(2000)
        .filter((g) => /^[\x21-\x7e]+$/.test(g))
        .slice(0, 300);
      const unknown = Array.from({ length: 300 }, () => generateApiKey('tg').key);
      expect(invalid).toHaveLength(300);
      const statuses = new Map<string, number>();
      await eachConcurrently([...invalid, ...unknown], 8, async (key) => {
        // Each unknown key from a loopback address of its own (Linux routes all of 127/8 to lo), as
        // above: the ALB appends the connection's address, which the guess budget is kept by.
        const i = unknown.indexOf(key);
        const from = i === -1 ? undefined : `127.1.${i >> 6}.${(i & 63) + 2}`;
        const { status, code } = await getFrom(alb.endpoint, key, from);
        const label = `${status} ${code}`;
        statuses.set(label, (statuses.get(label) ?? 0) + 1);
      });
      expect(Object.fromEntries(statuses)).toEqual({ '401 malformed_key': 300, '401 unknown_key': 300 });
      expect(Object.fromEntries(requests)).toEqual({ QueryCommand: 300 });
      await recordFigures('key-guessing-http', {
        parameters: { invalid: invalid.length, unknown: unknown.length },
        answers: Object.fromEntries(statuses),
        dynamoDbReads: requests.get('QueryCommand') ?? 0,
        otherDynamoDbRequests: [...requests].filter(([name]) => name !== 'QueryCommand').length,
      });
    } finally {
      await alb.close();
      destroy();
    }
  });
});
