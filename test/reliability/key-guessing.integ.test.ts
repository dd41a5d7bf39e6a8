import type { SQSClient } from '@aws-sdk/client-sqs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KeyApiMetric } from '../../contracts/metric-names';
import { DEFAULT_WINDOWS } from '../../services/gate/key-cache';
import { SqsUsagePublisher } from '../../services/gate/publisher';
import { generateApiKey, isWellFormedApiKey } from '../../services/shared/api-key';
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

  const present = (api: KeyApiUnderTest, key: string) =>
    api.handler(albEvent({ method: 'GET', headers: { 'x-api-key': key } }));

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
      guesses: GUESSES,
      answers: Object.fromEntries(codes),
      dynamoDbRequests: 0,
      readsPerGuess: 0,
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
        const result = await present(api, key);
        if (result.statusCode === 401 && resultJson(result).error?.code === 'unknown_key') refused++;
      }
    });
    const firstPassMs = performance.now() - started;
    expect(refused).toBe(2 * GUESSES);
    expect(reads()).toBe(GUESSES);

    // A burst of concurrent requests for one new key shares a single read.
    const burstKeys = Array.from({ length: 100 }, () => generateApiKey('tg').key);
    await Promise.all(burstKeys.flatMap((key) => Array.from({ length: 10 }, () => present(api, key))));
    expect(reads()).toBe(GUESSES + burstKeys.length);

    // After the negative window a guess costs one read again: one read per key per window.
    const again = keys.slice(0, 100);
    await sleep(DEFAULT_WINDOWS.negativeMs + 100);
    await Promise.all(again.map((key) => present(api, key)));
    expect(reads()).toBe(GUESSES + burstKeys.length + again.length);
    destroy();

    const writesOrOthers = [...requests.entries()].filter(([name]) => name !== 'QueryCommand');
    expect(writesOrOthers).toEqual([]);
    expect(await queueDepth(clients.sqs, queueUrl)).toBe(0); // nothing was billed
    const requestsMade = 2 * GUESSES + burstKeys.length * 10 + again.length;
    expect(api.metrics.get(KeyApiMetric.checks.unknown)).toBe(requestsMade);
    await recordFigures('key-guessing-unknown', {
      guesses: GUESSES,
      requests: requestsMade,
      dynamoDbReads: reads(),
      readsPerGuessedKeyWithinNegativeWindow: GUESSES / GUESSES,
      burst: '100 keys x 10 concurrent requests -> 100 reads',
      afterNegativeWindow: '100 keys re-presented after 3.1 s -> 100 reads',
      negativeWindowMs: DEFAULT_WINDOWS.negativeMs,
      readsPerSecondDynamoDbLocal: Math.round(GUESSES / (firstPassMs / 1000)),
    });
  });

  it('the same over HTTP through the local ALB: a sample of 300 + 300', async () => {
    const { api, requests, destroy } = countedKeyApi();
    const alb = await behindAlb(api.handler);
    try {
      // fetch can only send printable ASCII in a header; the handler-level test covers the rest.
      const invalid = checksumInvalidGuesses(2000)
        .filter((g) => /^[\x21-\x7e]+$/.test(g))
        .slice(0, 300);
      const unknown = Array.from({ length: 300 }, () => generateApiKey('tg').key);
      expect(invalid).toHaveLength(300);
      const statuses = new Map<string, number>();
      await eachConcurrently([...invalid, ...unknown], 8, async (key) => {
        const response = await fetch(alb.endpoint, { headers: { 'x-api-key': key } });
        const body = (await response.json()) as { error?: { code?: string } };
        const label = `${response.status} ${body.error?.code}`;
        statuses.set(label, (statuses.get(label) ?? 0) + 1);
      });
      expect(Object.fromEntries(statuses)).toEqual({ '401 malformed_key': 300, '401 unknown_key': 300 });
      expect(Object.fromEntries(requests)).toEqual({ QueryCommand: 300 });
    } finally {
      await alb.close();
      destroy();
    }
  });
});
