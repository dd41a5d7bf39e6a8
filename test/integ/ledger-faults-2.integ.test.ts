import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { type UsageEvent, utcDay } from '../../contracts/usage-event';
import { type SqsBatchHandler, SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { SqsUsagePublisher } from '../../services/gate/publisher';
import { FLUSH_PROFILES, TAIL_QUIET_MS } from '../../services/metering/ledger/ledger';
import { awsError } from '../support/aws';
import {
  type LedgerFixture,
  ledgerFixture,
  MovableClock,
  newKey,
  sqsEvent,
  testProducer,
} from '../support/ledger-harness';
import { endpoints, localClients } from '../support/local-stack';
import { accountOf } from '../support/metering-consumer';
import { createTestQueue, queueDepth, receiveAll, sendBodies } from '../support/queues';
import { eventually } from '../support/wait';

// The SQS ledger's fault list (design note §6), F6–F12: concurrency, the queue's own behaviour
// (copies, reordering, delays, dead letters) and the ledger's timers, through the real SQS emulator
// and SqsPoller where the queue is the point, on a usage table of each case's own. F1–F5 and
// F13–F16: ledger-faults.

const pollers: SqsPoller[] = [];
afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});

const sqs = () => localClients().sqs;
const testQueue = (visibilityTimeoutSeconds = 2, maxReceiveCount = 5) =>
  createTestQueue(sqs(), 'ledger-f2', { visibilityTimeoutSeconds, maxReceiveCount });

function poll(
  queue: { queueUrl: string; queueArn: string },
  handler: SqsBatchHandler,
  options: { batchSize?: number } = {},
) {
  const poller = new SqsPoller({
    sqs: sqs(),
    queueUrl: queue.queueUrl,
    queueArn: queue.queueArn,
    region: endpoints().region,
    handler,
    batchSize: options.batchSize ?? 10,
    batchingWindowMs: 50,
  });
  pollers.push(poller);
  poller.start();
  return poller;
}

const bodies = (events: readonly UsageEvent[]) => events.map((e) => JSON.stringify(e));

async function expectTotals(f: LedgerFixture, keys: readonly string[], expected: readonly number[]) {
  const totals = await Promise.all(keys.map((k) => f.totals(k)));
  expect(totals).toEqual(expected.map((n) => ({ day: n, total: n, month: n })));
}

/** Waits until the queue is empty and every handler returned. */
async function drained(queueUrl: string, busy: () => number, timeoutMs = 60_000) {
  await eventually(async () => busy() === 0 && (await queueDepth(sqs(), queueUrl)) === 0, timeoutMs, 200);
}

/** Tracks how many invocations run at once (did the pollers really overlap?). */
function overlapMeter() {
  const meter = { running: 0, most: 0 };
  const wrap =
    (handler: SqsBatchHandler): SqsBatchHandler =>
    async (event) => {
      meter.running++;
      meter.most = Math.max(meter.most, meter.running);
      try {
        return await handler(event);
      } finally {
        meter.running--;
      }
    };
  return { meter, wrap };
}

describe('the SQS ledger under concurrency and the queue (SQS emulator, DynamoDB Local)', {
  timeout: 90_000,
}, () => {
  it('F6 one message in two batches in flight: one commit wins on the version, the other dedupes', async () => {
    const f = await ledgerFixture((await testQueue()).dlqUrl);
    const key = newKey();
    const events = testProducer().events(6, key);
    const batch = sqsEvent(events);
    const [a, b] = [f.container({ flush: 'fresh' }), f.container({ flush: 'fresh' })];
    // a reads the head and writes its journal; b (the second batch holding the same messages)
    // commits in between; a's commit then meets a newer version.
    let bRun: Promise<unknown> | undefined;
    a.tap.fault = async (request, send) => {
      if (request.kind === 'head' && !bRun) {
        bRun = b.handler(batch);
        await bRun;
      }
      return send();
    };
    expect((await a.handler(batch)).batchItemFailures).toEqual([]);
    expect(bRun).toBeDefined();
    expect(a.tap.tally('head').refused).toBe(1);
    expect(b.outcomes[0]).toMatchObject({ counted: 6, duplicates: 0 });
    expect(a.outcomes[0]).toMatchObject({ counted: 0, duplicates: 6 });
    const { head, journals, done } = await f.state();
    expect(journals).toHaveLength(2); // a's journal is an orphan: named by no commit
    expect(f.named(head.pend)).toHaveLength(1);
    expect({ seq: head.seq, done }).toEqual({ seq: 1, done: 1 });
    await expectTotals(f, [key], [6]);
  });

  it('F6 (pollers) a batch redelivered to a second poller while the first still holds it: counted once', async () => {
    const q = await testQueue(1);
    const f = await ledgerFixture(q.dlqUrl);
    const key = newKey();
    const [a, b] = [f.container({ flush: 'fresh' }), f.container({ flush: 'fresh' })];
    const seenByB = new Set<string>();
    let holding = false;
    // a's first batch waits (past the visibility timeout) until b was handed the same messages.
    poll(q, async (event) => {
      if (!holding) {
        holding = true;
        await eventually(async () => event.Records.every((r) => seenByB.has(r.messageId)), 15_000, 50);
      }
      return a.handler(event);
    });
    await sendBodies(sqs(), q.queueUrl, bodies(testProducer().events(8, key)));
    await eventually(async () => holding, 10_000, 20);
    const { meter, wrap } = overlapMeter();
    poll(
      q,
      wrap(async (event) => {
        const response = await b.handler(event);
        for (const r of event.Records) seenByB.add(r.messageId);
        return response;
      }),
    );
    await eventually(async () => a.outcomes.length > 0, 20_000, 50);
    await drained(q.queueUrl, () => meter.running);
    const held = a.batches[0] ?? [];
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((id) => seenByB.has(id))).toBe(true); // really in two batches in flight
    expect(a.outcomes[0]).toMatchObject({ counted: 0, duplicates: held.length });
    expect(b.outcomes.reduce((n, o) => n + o.counted, 0)).toBe(8);
    await expectTotals(f, [key], [8]);
  });

  for (const count of [2, 5]) {
    it(`F7 ${count} pollers on one head with a backlog: exact, refused head commits counted`, async () => {
      const q = await testQueue(5);
      const f = await ledgerFixture(q.dlqUrl);
      const keys = Array.from({ length: 6 }, () => newKey());
      const producers = [testProducer(), testProducer(), testProducer()];
      const events = producers.flatMap((p, i) => keys.flatMap((k, j) => p.events(((i + j) % 3) + 3, k)));
      await sendBodies(sqs(), q.queueUrl, bodies(events));
      const { meter, wrap } = overlapMeter();
      const containers = Array.from({ length: count }, () => f.container({ flush: 'fresh' }));
      for (const c of containers) poll(q, wrap(c.handler));
      await drained(q.queueUrl, () => meter.running);
      // Whatever a flush gave up on under contention is the backstop's (it runs every minute).
      await f.container().backstop();
      const expected = keys.map((k) => events.filter((e) => e.keyId === k).length);
      await expectTotals(f, keys, expected);
      const { head, done } = await f.state();
      expect(done).toBe(head.seq);
      const committed = containers.reduce((n, c) => n + c.outcomes.reduce((m, o) => m + o.counted, 0), 0);
      expect(committed).toBe(events.length);
      expect(meter.most).toBeGreaterThan(1);
      const refused = containers.reduce((n, c) => n + c.tap.tally('head').refused, 0);
      const written = containers.reduce((n, c) => n + c.tap.tally('head').ok, 0);
      console.info(
        `F7 ${count} pollers: ${events.length} events, ${head.seq} commits, ${written} head writes, ${refused} refused (version moved), at most ${meter.most} invocations at once`,
      );
    });
  }

  it('F8 an SDK retry after a lost answer stores the body twice: one count', async () => {
    const q = await testQueue();
    const f = await ledgerFixture(q.dlqUrl);
    const client = localClients().sqs;
    let lost = 0;
    client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        if (lost++ === 0)
          throw Object.assign(awsError('TimeoutError', 'socket timed out'), { $retryable: {} });
        return result;
      },
      { step: 'deserialize', name: 'loseFirstAnswer' },
    );
    const [event] = testProducer().events(1, newKey());
    if (!event) throw new Error('no event');
    await new SqsUsagePublisher({ queueUrl: q.queueUrl, client }).publish(event);
    expect(lost).toBe(2);
    const copies = await receiveAll(sqs(), q.queueUrl, { remove: true });
    expect(copies.map((m) => m.Body)).toEqual([JSON.stringify(event), JSON.stringify(event)]);
    expect(new Set(copies.map((m) => m.MessageId)).size).toBe(2);
    const c = f.container({ flush: 'fresh' });
    for (const copy of copies) await c.handler(sqsEvent([event], [copy.MessageId ?? '']));
    expect(c.outcomes.map((o) => [o.counted, o.duplicates])).toEqual([
      [1, 0],
      [0, 1],
    ]);
    await expectTotals(f, [event.keyId], [1]);
  });

  it('F9 shuffled publish order and delayed copies: exact, and the range compacts to 1..n', async () => {
    const q = await testQueue();
    const f = await ledgerFixture(q.dlqUrl);
    const producer = testProducer();
    const keys = [newKey(), newKey()];
    const events = Array.from(
      { length: 40 },
      (_, i) => producer.events(1, keys[i % 2] ?? '')[0] as UsageEvent,
    );
    // Every other seq from the top, then the rest from the bottom: no batch arrives in order.
    const order = [
      ...events.filter((_, i) => i % 2 === 1).reverse(),
      ...events.filter((_, i) => i % 2 === 0),
    ];
    await sendBodies(sqs(), q.queueUrl, bodies(order));
    const copies = events.filter((_, i) => i % 4 === 0);
    for (let i = 0; i < copies.length; i += 10) {
      await sqs().send(
        new SendMessageBatchCommand({
          QueueUrl: q.queueUrl,
          Entries: copies
            .slice(i, i + 10)
            .map((e, n) => ({ Id: `c${n}`, MessageBody: JSON.stringify(e), DelaySeconds: 2 })),
        }),
      );
    }
    const c = f.container({ flush: 'fresh' });
    let mostRuns = 0;
    const { meter, wrap } = overlapMeter();
    // One poller: after each batch the head holds what it committed.
    poll(
      q,
      wrap(async (event) => {
        const response = await c.handler(event);
        mostRuns = Math.max(mostRuns, (await f.rangeOf(producer.id))?.runs.length ?? 0);
        return response;
      }),
    );
    await eventually(
      async () => c.outcomes.reduce((n, o) => n + o.duplicates, 0) >= copies.length,
      30_000,
      200,
    );
    await drained(q.queueUrl, () => meter.running);
    expect(mostRuns).toBeGreaterThan(1); // seqs really arrived out of order
    expect(c.outcomes.reduce((n, o) => n + o.counted, 0)).toBe(40);
    await expectTotals(f, keys, [20, 20]);
    const range = await f.rangeOf(producer.id);
    expect(range && { through: range.through, runs: range.runs, gaps: range.gaps }).toEqual({
      through: 40,
      runs: [],
      gaps: [],
    });
  });

  it('F10 a producer that skipped seqs: gaps recorded, closed past the late window; a late copy then is too_old', async () => {
    const q = await testQueue();
    const f = await ledgerFixture(q.dlqUrl);
    const key = newKey();
    const producer = testProducer();
    const clock = new MovableClock();
    const c = f.container({ flush: 'fresh', clock });
    const handle = async (events: readonly UsageEvent[]) => {
      expect((await c.handler(sqsEvent(events))).batchItemFailures).toEqual([]);
      return c.outcomes.at(-1);
    };
    const at = () => clock.now();
    // Seqs 4 and 5 were published with an unknown outcome: they arrive (or not) much later.
    const early = producer.events(3, key);
    const held = producer.events(2, key);
    const after = producer.events(5, key);
    await handle([...early, ...after]);
    expect(await f.rangeOf(producer.id)).toMatchObject({ through: 3, runs: [{ from: 6, to: 10 }], gaps: [] });

    // Past the reorder horizon (20 min), so the hole becomes a gap, and past the next UTC midnight,
    // so the counted events fall on two days whatever time the test runs.
    const untilMidnight = Date.parse(`${utcDay(Date.now())}T00:00:00Z`) + 86_400_000 - Date.now();
    clock.offsetMs = Math.max(21 * 60_000, untilMidnight + 60_000);
    const past = producer.events(1, key, at());
    await handle(past);
    expect(await f.rangeOf(producer.id)).toMatchObject({ through: 11, runs: [], gaps: [{ from: 4, to: 5 }] });
    // A late copy within the late window fills its part of the gap, once.
    expect(await handle([held[0] as UsageEvent])).toMatchObject({ counted: 1 });
    expect(await handle([held[0] as UsageEvent])).toMatchObject({ counted: 0, duplicates: 1 });
    expect((await f.rangeOf(producer.id))?.gaps).toMatchObject([{ from: 5, to: 5 }]);

    clock.offsetMs = 49 * 3_600_000; // past the 48 h late window: the gap is forgotten
    const last = producer.events(1, key, at());
    await handle(last);
    expect(await f.rangeOf(producer.id)).toMatchObject({ through: 12, runs: [], gaps: [] });
    expect(await handle([held[1] as UsageEvent])).toMatchObject({
      counted: 0,
      deadLettered: 1,
      refused: { too_old: 1 },
    });
    const dead = await receiveAll(sqs(), q.dlqUrl, { remove: true });
    expect(dead.map((m) => [m.Body, m.MessageAttributes?.reason?.StringValue])).toEqual([
      [JSON.stringify(held[1]), 'too_old'],
    ]);
    // Each counted event on the day of its own time: the eleventh on the next day, the last 49 h on.
    const counted = [...early, ...after, ...past, held[0] as UsageEvent, ...last];
    const perDay = new Map<string, number>();
    for (const e of counted) perDay.set(utcDay(e.ts), (perDay.get(utcDay(e.ts)) ?? 0) + 1);
    const accountId = accountOf(key);
    for (const [day, n] of perDay) expect(await f.reader.keyDayCount(accountId, key, day)).toBe(n);
    const months = new Set([...perDay.keys()].map((day) => day.slice(0, 7)));
    let monthly = 0;
    for (const month of months)
      monthly += await f.reader.usedInPeriod(accountId, 'month', new Date(`${month}-15`));
    expect(monthly).toBe(11);
  });

  it('F11 1,000 short-lived producers, then idle: archived; an archived duplicate dropped, a new event counted once', async () => {
    const f = await ledgerFixture((await testQueue()).dlqUrl);
    const keys = Array.from({ length: 10 }, () => newKey());
    const churn = Array.from({ length: 1_000 }, () => testProducer());
    const events = churn.flatMap((p, i) => p.events(2, keys[i % 10] ?? ''));
    const c = f.container({ flush: 'fresh' });
    for (let i = 0; i < events.length; i += 1_000) {
      expect((await c.handler(sqsEvent(events.slice(i, i + 1_000)))).batchItemFailures).toEqual([]);
    }
    expect(Object.keys((await f.state()).head.prod)).toHaveLength(1_000);

    // Idle past the archive time: each commit moves up to 25 idle producers to their archives.
    const clock = new MovableClock();
    clock.offsetMs = 11 * 60_000;
    const live = testProducer();
    const liveKey = newKey();
    const later = f.container({ flush: 'fresh', clock });
    let commits = 0;
    while (Object.keys((await f.store.readHead()).prod).length > 1 && commits < 60) {
      await later.handler(sqsEvent(live.events(1, liveKey, clock.now())));
      commits++;
    }
    expect(Object.keys((await f.state()).head.prod)).toEqual([live.id]);
    expect(later.tap.tally('archive').ok).toBe(1_000);
    expect(await f.scan('LEDGER#sqs#P#')).toHaveLength(1_000);

    const first = churn[0];
    const copy = events[1]; // first's seq 2 (and last)
    if (!first || !copy) throw new Error('no producer');
    await later.handler(sqsEvent([copy], ['redelivered-copy']));
    expect(later.outcomes.at(-1)).toMatchObject({ counted: 0, duplicates: 1 });
    const back = first.events(1, keys[0] ?? '', clock.now());
    await later.handler(sqsEvent([...back, ...back]));
    expect(later.outcomes.at(-1)).toMatchObject({ counted: 1, duplicates: 1 });
    expect(await f.rangeOf(first.id)).toMatchObject({ through: 3, runs: [], gaps: [] });
    await later.handler(sqsEvent(back, ['again']));
    expect(later.outcomes.at(-1)).toMatchObject({ counted: 0, duplicates: 1 });
    await expectTotals(f, [...keys, liveKey], [...keys.map((_, i) => 200 + (i === 0 ? 1 : 0)), commits]);
    const { head, done } = await f.state();
    expect(done).toBe(head.seq);

    // These assertions catch an archive read that misses a fresh archive (an eventually consistent
    // read on AWS): a container whose archive reads find nothing counts an archived copy again.
    const stale = f.container({ flush: 'fresh', clock });
    stale.tap.fault = (request, send) => {
      const text = JSON.stringify(request.input);
      if (request.command === 'BatchGetItemCommand' && text.includes('#P#'))
        Object.assign(request.input as object, JSON.parse(text.replaceAll('#P#', '#P#stale-')));
      return send();
    };
    const archivedCopy = events[3]; // churn[1]'s seq 2, archived
    if (!archivedCopy) throw new Error('no event');
    await stale.handler(sqsEvent([archivedCopy]));
    expect(stale.outcomes[0]).toMatchObject({ counted: 1, duplicates: 0 });
    expect((await f.totals(archivedCopy.keyId)).day).toBe(201); // one too many: caught
  });

  it('F12 a dead-letter redrive of counted messages: all duplicates', async () => {
    const q = await testQueue(1, 2);
    const f = await ledgerFixture(q.dlqUrl);
    const keys = [newKey(), newKey()];
    const events = testProducer()
      .events(12, keys[0] ?? '')
      .concat(testProducer().events(8, keys[1] ?? ''));
    const crashing = f.container({ flush: 'fresh' });
    // Counted, then the container dies before the poller deletes: twice, and SQS dead-letters them.
    poll(q, async (event) => {
      await crashing.handler(event);
      throw new Error('simulated crash after the commit');
    });
    await sendBodies(sqs(), q.queueUrl, bodies(events));
    await eventually(async () => (await queueDepth(sqs(), q.dlqUrl)) === events.length, 30_000, 200);
    await Promise.all(pollers.splice(0).map((p) => p.stop()));
    expect(crashing.outcomes.reduce((n, o) => n + o.counted, 0)).toBe(events.length);
    expect(crashing.outcomes.reduce((n, o) => n + o.duplicates, 0)).toBeGreaterThanOrEqual(events.length);
    await expectTotals(f, keys, [12, 8]);

    // The redrive sends them back as they are (services/metering/redrive.ts, for records without a reason).
    const dead = await receiveAll(sqs(), q.dlqUrl, { remove: true });
    expect(dead).toHaveLength(events.length);
    await sendBodies(
      sqs(),
      q.queueUrl,
      dead.map((m) => m.Body ?? ''),
    );
    const healthy = f.container({ flush: 'fresh' });
    const { meter, wrap } = overlapMeter();
    poll(q, wrap(healthy.handler));
    await eventually(
      async () => healthy.outcomes.reduce((n, o) => n + o.duplicates, 0) >= events.length,
      30_000,
      200,
    );
    await drained(q.queueUrl, () => meter.running);
    expect(healthy.outcomes.reduce((n, o) => n + o.counted, 0)).toBe(0);
    expect(healthy.tap.tally('journal').ok + healthy.tap.tally('head').ok).toBe(0);
    await expectTotals(f, keys, [12, 8]);
  });
  it("F18 a burst's tail: its commit returns at once, and its delayed message on the queue flushes it", async () => {
    const q = await testQueue(5, 5);
    const f = await ledgerFixture(q.dlqUrl);
    const key = newKey();
    const c = f.container({ flush: 'balanced', usageQueueUrl: q.queueUrl });
    const took: number[] = [];
    poll(q, async (event) => {
      const started = Date.now();
      try {
        return await c.handler(event);
      } finally {
        took.push(Date.now() - started);
      }
    });
    const events = testProducer().events(15, key);
    await sendBodies(sqs(), q.queueUrl, bodies(events));
    const oldest = Math.min(...events.map((e) => e.ts));
    await eventually(async () => (await f.totals(key)).total === 15, 20_000, 100);
    const flushedAfter = Date.now() - oldest;
    // Flushed by the message it scheduled once traffic went quiet (no batch for TAIL_QUIET_MS;
    // whole seconds rounded down, plus the poll): not before, bar that second, and not by the
    // backstop's minute.
    expect(flushedAfter).toBeGreaterThanOrEqual(TAIL_QUIET_MS - 1_000);
    expect(flushedAfter).toBeLessThan(FLUSH_PROFILES.balanced.maxDelayMs + 5_000);
    // No invocation waited for its tail (waiting in it would take ~4.5 s of the 5): the commits
    // returned, and the flush came in a batch of its own, the scheduled message's.
    expect(Math.max(...took)).toBeLessThan(1_500);
    expect(c.outcomes.reduce((n, o) => n + o.counted, 0)).toBe(15);
    expect(c.outcomes.every((o) => o.deadLettered === 0)).toBe(true);
    // The tick was acknowledged: nothing left on the queue, nothing dead-lettered, counted once.
    await drained(q.queueUrl, () => 0);
    expect(await queueDepth(sqs(), q.dlqUrl)).toBe(0);
    await expectTotals(f, [key], [15]);
  });
});
