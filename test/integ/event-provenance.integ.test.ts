import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutRecordCommand } from '@aws-sdk/client-kinesis';
import type { Message } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { MeteringMetric, MeteringRefusedMetric, SERVICE_NAMES } from '../../contracts/metric-names';
import { MAX_EVENT_UNITS, newUsageEvent, type UsageEvent } from '../../contracts/usage-event';
import { KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { KeyStore } from '../../services/accounts/key-store';
import { legacyFirstKeyId } from '../../services/accounts/records';
import type { UsageReader } from '../../services/usage/usage-reader';
import { awsError, documentClient, engineClients, injectFaults } from '../support/aws';
import { recordFigures } from '../support/figures';
import { endpoints, localClients, stackEnv } from '../support/local-stack';
import { meteringConsumer } from '../support/metering-consumer';
import { drainingMetrics, type MetricTotals } from '../support/metrics';
import { createTestQueue, createTestStream, receiveAll, sendBodies } from '../support/queues';
import { eventually } from '../support/wait';

/**
 * Issue 15, "Forged usage is counted": a record written straight to the usage queue (or stream)
 * naming Bob's account and Alice's key raised Bob's usage. The consumer now checks every event's
 * key → account against its own read of the keys table before counting it.
 */
const pollers: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});

const run = `${process.pid}_${Date.now()}`;
let accounts = 0;

function keyStore() {
  const env = stackEnv();
  return new KeyStore({
    client: localClients().doc,
    accountsTable: env[ENV.accountsTable] ?? '',
    keysTable: env[ENV.keysTable] ?? '',
    keyPrefix: 'tg',
  });
}

/** A signed-up account (its pending first key) and one active key, as the product makes them. */
async function tenant(store: KeyStore, who: string) {
  const accountId = `acc_${who}_${run}_${accounts++}`;
  const now = new Date();
  const { account } = await store.provisionAccount({
    accountId,
    email: `${who}@example.com`,
    userName: accountId,
    now,
  });
  const created = await store.createKey({ accountId, name: 'main', now });
  if (!created.ok) throw new Error(`key for ${who}: ${created.reason}`);
  return { accountId, firstKeyId: account.firstKeyId, keyId: created.value.record.keyId };
}

/** An account's usage: its keys' all-time request counts, summed. */
async function accountUsage(usage: UsageReader, accountId: string): Promise<number> {
  let sum = 0;
  for (const total of (await usage.keyTotals(accountId)).values()) sum += total.count;
  return sum;
}

const reasonOf = (m: Message) => m.MessageAttributes?.reason?.StringValue;
const reasonsIn = (messages: readonly Message[]) => {
  const byReason: Record<string, number> = {};
  for (const m of messages) byReason[reasonOf(m) ?? '?'] = (byReason[reasonOf(m) ?? '?'] ?? 0) + 1;
  return byReason;
};

/** Waits for `n` messages in a DLQ and takes them. */
async function deadLetters(dlqUrl: string, n: number): Promise<Message[]> {
  const { sqs } = localClients();
  const all: Message[] = [];
  await eventually(
    async () => {
      all.push(...(await receiveAll(sqs, dlqUrl, { remove: true })));
      return all.length >= n;
    },
    15_000,
    100,
  );
  return all;
}

const figures: Record<string, unknown> = {};

describe('event provenance: the consumer counts only events whose key belongs to their account', () => {
  it('over SQS: forged, unknown-key and oversized records are dead-lettered with their reason; a brand-new key counts', async () => {
    const store = keyStore();
    const alice = await tenant(store, 'alice');
    const bob = await tenant(store, 'bob');
    const totals: MetricTotals = new Map();
    const queue = await createTestQueue(localClients().sqs, 'provenance', {
      visibilityTimeoutSeconds: 2,
      maxReceiveCount: 5,
    });
    const c = meteringConsumer('sqs', queue.dlqUrl, undefined, {
      seedTestKeys: false,
      metrics: drainingMetrics(SERVICE_NAMES.metering, totals),
    });

    // Bob has real usage first (the 7), counted through the same consumer.
    const now = () => new Date();
    const bobsOwn = Array.from({ length: 7 }, () =>
      newUsageEvent({ keyId: bob.keyId, accountId: bob.accountId, now: now() }),
    );
    // A key created a moment before its first event: the consistent re-read of a miss finds it.
    const fresh = await store.createKey({ accountId: bob.accountId, name: 'fresh', now: now() });
    if (!fresh.ok) throw new Error(fresh.reason);
    const freshKeyId = fresh.value.record.keyId;
    const freshEvent = newUsageEvent({ keyId: freshKeyId, accountId: bob.accountId, now: now() });

    const aliceBefore = await accountUsage(c.usage, alice.accountId);
    // The forgery: Bob's account, Alice's unused (first) key; and Alice's active key too.
    // Alice's first key id is random (issue 21): nothing tells whose it is, so it is unknown to Bob.
    const forged = newUsageEvent({ keyId: alice.firstKeyId, accountId: bob.accountId, now: now() });
    // Issue 21: Alice's first key as it used to be named, derived from her account id, under her
    // own account. It names no key of hers now, so it bills her nothing. Under Bob's account the
    // old form is still recognised as another account's (accounts provisioned before keep it).
    const derived = newUsageEvent({
      keyId: legacyFirstKeyId(alice.accountId),
      accountId: alice.accountId,
      now: now(),
    });
    const legacyForged = newUsageEvent({
      keyId: legacyFirstKeyId(alice.accountId),
      accountId: bob.accountId,
      now: now(),
    });
    const forgedActive = newUsageEvent({ keyId: alice.keyId, accountId: bob.accountId, now: now() });
    const unknown = newUsageEvent({ keyId: `key_${run}_nobody`, accountId: bob.accountId, now: now() });
    const oversized: UsageEvent = {
      ...newUsageEvent({ keyId: bob.keyId, accountId: bob.accountId, now: now() }),
      units: 1_000_000,
    };
    // Alice's key used for real once (so the container has seen whose it is), in the same batch.
    const aliceReal = newUsageEvent({ keyId: alice.keyId, accountId: alice.accountId, now: now() });

    const poller = new SqsPoller({
      sqs: localClients().sqs,
      queueUrl: queue.queueUrl,
      queueArn: queue.queueArn,
      region: endpoints().region,
      handler: c.handler,
      batchSize: 100,
      batchingWindowMs: 300,
    });
    pollers.push(poller);
    // Bob's own usage first, and counted, before the forgeries arrive.
    await sendBodies(
      localClients().sqs,
      queue.queueUrl,
      [...bobsOwn, aliceReal].map((e) => JSON.stringify(e)),
    );
    poller.start();
    await eventually(async () => (await accountUsage(c.usage, bob.accountId)) === 7, 15_000, 100);
    const bobBefore = await accountUsage(c.usage, bob.accountId);
    const aliceAfterReal = await accountUsage(c.usage, alice.accountId);
    const batchesBefore = c.outcomes.length;

    await sendBodies(
      localClients().sqs,
      queue.queueUrl,
      [forged, forgedActive, unknown, oversized, freshEvent, derived, legacyForged].map((e) =>
        JSON.stringify(e),
      ),
    );
    const dead = await deadLetters(queue.dlqUrl, 6);
    await eventually(async () => (await c.usage.keyTotals(bob.accountId)).has(freshKeyId), 10_000, 100);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // past a visibility timeout: nothing comes back

    const bobAfter = await accountUsage(c.usage, bob.accountId);
    const aliceAfter = await accountUsage(c.usage, alice.accountId);
    const bobTotals = await c.usage.keyTotals(bob.accountId);
    const byBody = new Map(dead.map((m) => [JSON.parse(m.Body ?? '{}').id as string, reasonOf(m)]));

    expect(bobBefore).toBe(7);
    expect(aliceAfterReal).toBe(aliceBefore + 1);
    // Bob gains exactly the fresh key's one real event; the forgeries move nobody's usage.
    expect(bobAfter).toBe(bobBefore + 1);
    expect(bobTotals.get(freshKeyId)?.count).toBe(1);
    expect(bobTotals.has(alice.firstKeyId)).toBe(false);
    expect(bobTotals.has(alice.keyId)).toBe(false);
    expect(aliceAfter).toBe(aliceAfterReal);
    expect(byBody.get(forged.id)).toBe('unknown_key');
    expect(byBody.get(forgedActive.id)).toBe('account_mismatch');
    expect(byBody.get(unknown.id)).toBe('unknown_key');
    expect(byBody.get(derived.id)).toBe('unknown_key');
    expect(byBody.get(legacyForged.id)).toBe('account_mismatch');
    expect(alice.firstKeyId).not.toBe(legacyFirstKeyId(alice.accountId));
    // Units above what a producer can emit: refused by the shared schema itself.
    expect(byBody.get(oversized.id)).toBe('invalid_event');
    expect(dead).toHaveLength(6);
    // The body is kept as it came, so a fixed consumer could take it back.
    expect(JSON.parse(dead.find((m) => JSON.parse(m.Body ?? '{}').id === unknown.id)?.Body ?? '{}')).toEqual(
      unknown,
    );

    // The consumer's own account of it: outcomes and metrics.
    const later = c.outcomes.slice(batchesBefore);
    const refused = (reason: string) =>
      later.reduce((sum, o) => sum + ((o.refused as Record<string, number> | undefined)?.[reason] ?? 0), 0);
    expect(refused('account_mismatch')).toBe(2);
    expect(refused('unknown_key')).toBe(3);
    expect(refused('invalid_event')).toBe(1);
    expect(totals.get(MeteringRefusedMetric.account_mismatch)).toBe(2);
    expect(totals.get(MeteringRefusedMetric.unknown_key)).toBe(3);
    expect(totals.get(MeteringRefusedMetric.invalid_event)).toBe(1);
    expect(totals.get(MeteringMetric.eventsCounted)).toBe(7 + 1 + 1);
    const reads = totals.get(MeteringMetric.provenanceReads) ?? 0;
    expect(reads).toBeGreaterThan(0);

    Object.assign(figures, {
      sqs: {
        bobUsageBefore: bobBefore,
        bobUsageAfter: bobAfter,
        aliceUsageBeforeForgeries: aliceAfterReal,
        aliceUsageAfter: aliceAfter,
        forgedCounted: bobAfter - bobBefore - (bobTotals.get(freshKeyId)?.count ?? 0),
        deadLetteredByReason: reasonsIn(dead),
        derivedFirstKeyReason: byBody.get(derived.id),
        freshKeyEventsCounted: bobTotals.get(freshKeyId)?.count ?? 0,
        batches: c.outcomes.length,
        provenanceReadRequests: reads,
        provenanceReadRequestsPerBatch: reads / c.outcomes.length,
      },
      parameters: { maxEventUnits: MAX_EVENT_UNITS, oversizedUnits: 1_000_000 },
    });
  });

  it('a batch whose check finds DynamoDB unavailable is retried, neither counted unchecked nor dead-lettered', async () => {
    const store = keyStore();
    const bob = await tenant(store, 'bob');
    const { sqs } = localClients();
    const dlqUrl = (
      await createTestQueue(sqs, 'provenance-down', { visibilityTimeoutSeconds: 2, maxReceiveCount: 5 })
    ).dlqUrl;
    // The provenance check's own client, with BatchGetItem throttled while `down`.
    const keysClients = engineClients(endpoints());
    let down = true;
    let refusedReads = 0;
    injectFaults(keysClients.dynamo, (command) => {
      if (!down || command !== 'BatchGetItemCommand') return undefined;
      refusedReads++;
      return awsError('ThrottlingException', 'Rate of requests exceeds the allowed throughput');
    });
    const totals: MetricTotals = new Map();
    const c = meteringConsumer('sqs', dlqUrl, undefined, {
      seedTestKeys: false,
      keys: documentClient(keysClients.dynamo),
      metrics: drainingMetrics(SERVICE_NAMES.metering, totals),
    });
    const events = [
      ...Array.from({ length: 3 }, () =>
        newUsageEvent({ keyId: bob.keyId, accountId: bob.accountId, now: new Date() }),
      ),
      newUsageEvent({ keyId: `key_${run}_ghost`, accountId: bob.accountId, now: new Date() }),
    ];
    const batch: SQSEvent = {
      Records: events.map((e, i) => ({
        eventSource: 'aws:sqs',
        messageId: `m${i}`,
        body: JSON.stringify(e),
      })) as unknown as SQSEvent['Records'],
    };
    const first = await c.handler(batch);
    expect(first.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(await accountUsage(c.usage, bob.accountId)).toBe(0);
    expect(await receiveAll(sqs, dlqUrl, { remove: false, visibilityTimeout: 0 })).toHaveLength(0);
    expect(totals.get(MeteringMetric.provenanceCheckFailures)).toBe(1);

    // DynamoDB back: the same records, delivered again, are checked and counted or refused.
    down = false;
    const again = await c.handler(batch);
    expect(again.batchItemFailures).toEqual([]);
    expect(await accountUsage(c.usage, bob.accountId)).toBe(3);
    const dead = await deadLetters(dlqUrl, 1);
    expect(dead.map(reasonOf)).toEqual(['unknown_key']);
    Object.assign(figures, {
      unavailable: {
        recordsFailedWhileDown: first.batchItemFailures.length,
        countedWhileDown: 0,
        deadLetteredWhileDown: 0,
        batchGetAttemptsRefused: refusedReads,
        countedAfterRecovery: await accountUsage(c.usage, bob.accountId),
        deadLetteredAfterRecovery: reasonsIn(dead),
      },
    });
  });

  it('over Kinesis: the same forgeries are dead-lettered, the real event counted', async () => {
    const store = keyStore();
    const alice = await tenant(store, 'alice');
    const bob = await tenant(store, 'bob');
    const { kinesis, sqs } = localClients();
    const stream = await createTestStream(kinesis, sqs, 'provenance');
    const totals: MetricTotals = new Map();
    const c = meteringConsumer('kinesis', stream.dlqUrl, undefined, {
      seedTestKeys: false,
      metrics: drainingMetrics(SERVICE_NAMES.metering, totals),
    });
    const real = newUsageEvent({ keyId: bob.keyId, accountId: bob.accountId, now: new Date() });
    const forged = newUsageEvent({ keyId: alice.firstKeyId, accountId: bob.accountId, now: new Date() });
    const unknown = newUsageEvent({
      keyId: `key_${run}_k_nobody`,
      accountId: bob.accountId,
      now: new Date(),
    });
    const oversized = {
      ...newUsageEvent({ keyId: bob.keyId, accountId: bob.accountId, now: new Date() }),
      units: 50,
    };
    for (const event of [forged, real, unknown, oversized]) {
      await kinesis.send(
        new PutRecordCommand({
          StreamName: stream.name,
          PartitionKey: event.keyId,
          Data: Buffer.from(JSON.stringify(event)),
        }),
      );
    }
    const poller = new KinesisPoller({
      kinesis,
      streamName: stream.name,
      streamArn: stream.arn,
      region: endpoints().region,
      handler: c.handler,
      checkpointFile: join(await mkdtemp(join(tmpdir(), 'kpoll-')), 'checkpoints.json'),
      batchSize: 100,
      idleMs: 50,
    });
    pollers.push(poller);
    await poller.start();
    const dead = await deadLetters(stream.dlqUrl, 3);
    await eventually(async () => (await accountUsage(c.usage, bob.accountId)) === 1, 10_000, 100);
    await new Promise((resolve) => setTimeout(resolve, 500));

    const byBody = new Map(dead.map((m) => [JSON.parse(m.Body ?? '{}').id as string, reasonOf(m)]));
    expect(await accountUsage(c.usage, bob.accountId)).toBe(1);
    expect(await accountUsage(c.usage, alice.accountId)).toBe(0);
    expect(byBody.get(forged.id)).toBe('unknown_key');
    expect(byBody.get(unknown.id)).toBe('unknown_key');
    expect(byBody.get(oversized.id)).toBe('invalid_event');
    expect(dead.every((m) => m.MessageAttributes?.transport?.StringValue === 'kinesis')).toBe(true);
    expect(totals.get(MeteringRefusedMetric.account_mismatch)).toBeUndefined();
    expect(totals.get(MeteringRefusedMetric.unknown_key)).toBe(2);
    expect(totals.get(MeteringMetric.eventsCounted)).toBe(1);
    Object.assign(figures, {
      kinesis: {
        bobUsageAfter: await accountUsage(c.usage, bob.accountId),
        aliceUsageAfter: await accountUsage(c.usage, alice.accountId),
        deadLetteredByReason: reasonsIn(dead),
        provenanceReadRequests: totals.get(MeteringMetric.provenanceReads) ?? 0,
        batches: c.outcomes.length,
      },
    });
    await recordFigures('event-provenance', figures);
  });
});
