import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { newUsageEvent, type UsageEvent, utcDay } from '../../contracts/usage-event';
import { type SqsBatchHandler, SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { SqsUsagePublisher } from '../../services/gate/publisher';
import type { UsageReader } from '../../services/usage/usage-reader';
import { awsError, injectFaults } from '../support/aws';
import { endpoints, localClients } from '../support/local-stack';
import { accountOf, meteringConsumer, testEvents } from '../support/metering-consumer';
import { createTestQueue, sendBodies } from '../support/queues';
import { eventually } from '../support/wait';

const pollers: SqsPoller[] = [];

afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});

/** A queue and DLQ of this test's own, with a short visibility timeout so redeliveries come fast. */
const testQueue = () =>
  createTestQueue(localClients().sqs, 'fault', { visibilityTimeoutSeconds: 2, maxReceiveCount: 5 });

const consumer = (dlqUrl: string) => meteringConsumer('sqs', dlqUrl);

function poll(queueUrl: string, queueArn: string, handler: SqsBatchHandler) {
  const poller = new SqsPoller({
    sqs: localClients().sqs,
    queueUrl,
    queueArn,
    region: endpoints().region,
    handler,
    batchSize: 25,
    batchingWindowMs: 100,
  });
  pollers.push(poller);
  poller.start();
  return poller;
}

const send = (queueUrl: string, bodies: string[]) => sendBodies(localClients().sqs, queueUrl, bodies);

const events = testEvents;

async function todayCount(usage: UsageReader, keyId: string) {
  return usage.keyDayCount(accountOf(keyId), keyId, utcDay(Date.now()));
}

async function settled(usage: UsageReader, keyId: string, expected: number) {
  await eventually(async () => (await todayCount(usage, keyId)) >= expected, 20_000, 100);
  await new Promise((resolve) => setTimeout(resolve, 2500)); // longer than a visibility timeout
  return todayCount(usage, keyId);
}

describe('exactly once under failure (real SQS emulator and DynamoDB Local, faults injected)', () => {
  it('a consumer crash after the counter write and before acknowledging counts nothing twice', async () => {
    const q = await testQueue();
    const c = consumer(q.dlqUrl);
    let crashes = 0;
    poll(q.queueUrl, q.queueArn, async (event) => {
      const response = await c.handler(event);
      // Crash after the writes committed, before the poller could delete anything.
      if (crashes++ < 2) throw new Error('simulated crash');
      return response;
    });
    const batch = events(60);
    await send(
      q.queueUrl,
      batch.map((e) => JSON.stringify(e)),
    );
    expect(await settled(c.usage, batch[0]?.keyId ?? '', 60)).toBe(60);
    expect(crashes).toBeGreaterThan(2);
    expect(c.batches.flat().length).toBeGreaterThan(60); // records really came twice
  });

  it('the same event delivered twice, in different batches, counts once', async () => {
    const q = await testQueue();
    const c = consumer(q.dlqUrl);
    poll(q.queueUrl, q.queueArn, c.handler);
    const batch = events(20);
    const keyId = batch[0]?.keyId ?? '';
    await send(
      q.queueUrl,
      batch.map((e) => JSON.stringify(e)),
    );
    await eventually(async () => (await todayCount(c.usage, keyId)) === 20, 10_000);
    const batchesBefore = c.batches.length;
    await send(
      q.queueUrl,
      batch.slice(0, 12).map((e) => JSON.stringify(e)),
    );
    await eventually(async () => c.batches.length > batchesBefore, 10_000);
    expect(await settled(c.usage, keyId, 20)).toBe(20);
  });

  it('a producer retry that publishes one event twice counts once', async () => {
    const q = await testQueue();
    const c = consumer(q.dlqUrl);
    poll(q.queueUrl, q.queueArn, c.handler);
    // key-api's publisher on a real SQS client whose first answer is lost after the message was
    // stored: the SDK's own retry sends it again.
    const { sqs } = localClients();
    let lost = 0;
    sqs.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        if (lost++ === 0)
          throw Object.assign(awsError('TimeoutError', 'socket timed out'), { $retryable: {} });
        return result;
      },
      { step: 'deserialize', name: 'loseFirstAnswer' },
    );
    const publisher = new SqsUsagePublisher({ queueUrl: q.queueUrl, client: sqs });
    const [event] = events(1);
    if (!event) throw new Error('no event');
    await publisher.publish(event);
    expect(lost).toBe(2); // sent twice
    expect(await settled(c.usage, event.keyId, 1)).toBe(1);
  });

  it('DynamoDB throttling mid-batch fails only the throttled aggregates, which are counted on redelivery', async () => {
    const q = await testQueue();
    const c = consumer(q.dlqUrl);
    // The mark path (events from a gate before the numbering; the ledger's throttling is its own
    // test): each aggregate's transaction fails or commits alone.
    const throttled = events(15, undefined, { numbered: false });
    const calm = events(15, undefined, { numbered: false });
    let throttles = 0;
    injectFaults(c.clients.dynamo, (command, input) => {
      const text = JSON.stringify(input);
      if (
        command === 'TransactWriteItemsCommand' &&
        text.includes(throttled[0]?.keyId ?? '') &&
        throttles < 3
      ) {
        throttles++;
        return awsError(
          'ProvisionedThroughputExceededException',
          'Rate of requests exceeds the allowed throughput',
        );
      }
      return undefined;
    });
    poll(q.queueUrl, q.queueArn, c.handler);
    const mixed = throttled.flatMap((e, i) => [e, calm[i] as UsageEvent]);
    await send(
      q.queueUrl,
      mixed.map((e) => JSON.stringify(e)),
    );
    expect(await settled(c.usage, calm[0]?.keyId ?? '', 15)).toBe(15);
    expect(await settled(c.usage, throttled[0]?.keyId ?? '', 15)).toBe(15);
    expect(throttles).toBe(3);
  });

  it('a poison record goes to the dead letter with its reason; the rest of its batch is counted', async () => {
    const q = await testQueue();
    const c = consumer(q.dlqUrl);
    poll(q.queueUrl, q.queueArn, c.handler);
    const good = events(9);
    const tooOld = newUsageEvent({
      keyId: good[0]?.keyId ?? '',
      accountId: 'a',
      now: new Date(Date.now() - 3 * 86_400_000),
    });
    const bodies = good.map((e) => JSON.stringify(e));
    bodies.splice(
      4,
      0,
      '{"v":1,"id":"not-enough"',
      JSON.stringify({ ...good[0], units: -5, id: 'x'.repeat(20) }),
      JSON.stringify(tooOld),
    );
    await send(q.queueUrl, bodies);
    expect(await settled(c.usage, good[0]?.keyId ?? '', 9)).toBe(9);

    const { sqs } = localClients();
    const dead = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: q.dlqUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    const reasons = (dead.Messages ?? []).map((m) => m.MessageAttributes?.reason?.StringValue).sort();
    expect(reasons).toEqual(['invalid_event', 'invalid_json', 'too_old']);
    expect((dead.Messages ?? []).map((m) => m.Body)).toContain(JSON.stringify(tooOld));
  });

  it('keeps counting exactly when one SQS message is handed over in a batch twice', async () => {
    // Lambda may deliver duplicates in one batch; a batch built so makes that deterministic.
    const c = consumer((await testQueue()).dlqUrl);
    const [event] = events(1);
    const body = JSON.stringify(event);
    const record = (messageId: string) => ({ messageId, body, eventSource: 'aws:sqs' });
    const response = await c.handler({
      Records: [record('1'), record('2'), record('1')],
    } as unknown as SQSEvent);
    expect(response.batchItemFailures).toEqual([]);
    expect(await todayCount(c.usage, event?.keyId ?? '')).toBe(1);
  });
});
