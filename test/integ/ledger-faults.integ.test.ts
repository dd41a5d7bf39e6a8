import { beforeAll, describe, expect, it } from 'vitest';
import { LEDGER_BACKSTOP_EVENT } from '../../contracts/resources';
import { newUsageEvent, type UsageEvent } from '../../contracts/usage-event';
import { awsError } from '../support/aws';
import {
  type LedgerFixture,
  type LedgerRequest,
  ledgerFixture,
  MovableClock,
  newKey,
  sqsEvent,
  testProducer,
} from '../support/ledger-harness';
import { localClients } from '../support/local-stack';
import { accountOf } from '../support/metering-consumer';
import { createTestQueue } from '../support/queues';

// The SQS ledger's fault list (design note §6, F1–F5 and F13–F16): each fault injected into a real
// client of one container, the batch handed to composeMetering's handler as Lambda would, against
// DynamoDB Local on a usage table of the case's own. Every case checks that its fault really
// happened, then the exact totals and the ledger's own state. F6–F12: ledger-faults-2.

let dlqUrl = '';
beforeAll(async () => {
  dlqUrl = (
    await createTestQueue(localClients().sqs, 'ledger-f', { visibilityTimeoutSeconds: 2, maxReceiveCount: 5 })
  ).dlqUrl;
});

/** Past the ledger's 10 s lease: another container may take a stalled flush over. */
const PAST_LEASE_MS = 11_000;

/** A batch over three keys (three accounts) from one producer: 4 + 3 + 2 events. */
function threeKeys() {
  const producer = testProducer();
  const keys = [newKey(), newKey(), newKey()] as const;
  const events = [
    ...producer.events(4, keys[0]),
    ...producer.events(3, keys[1]),
    ...producer.events(2, keys[2]),
  ];
  return { producer, keys, events, expected: [4, 3, 2] as const };
}

async function expectTotals(f: LedgerFixture, keys: readonly string[], expected: readonly number[]) {
  const totals = await Promise.all(keys.map((k) => f.totals(k)));
  expect(totals).toEqual(expected.map((n) => ({ day: n, total: n, month: n })));
}

const timeout = (request: LedgerRequest) => awsError('TimeoutError', `socket timed out (${request.kind})`);

describe('the SQS ledger under faults (DynamoDB Local, faults injected into a container client)', () => {
  it('F1 crash after the journal write, before the head commit: the orphan is ignored, the redelivery counts once', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const first = f.container({ flush: 'fresh' });
    first.tap.crash((r) => (r.kind === 'journal' ? 'after' : undefined));
    const lost = await first.handler(sqsEvent(events));
    expect(first.tap.crashed).toBe(true);
    expect(first.tap.tally('journal').ok).toBe(1);
    expect(first.tap.tally('head').ok).toBe(0);
    expect(lost.batchItemFailures).toHaveLength(events.length);
    const orphan = (await f.state()).journals;
    expect(orphan).toHaveLength(1);

    const second = f.container({ flush: 'fresh' });
    expect((await second.handler(sqsEvent(events))).batchItemFailures).toEqual([]);
    expect(second.outcomes[0]).toMatchObject({ counted: events.length, duplicates: 0 });
    const { head, done, journals } = await f.state();
    expect(journals).toHaveLength(2);
    expect(f.named(head.pend)).not.toContain(orphan[0]);
    // One head write: the commit claimed its flush with it (fresh).
    expect({ ver: head.ver, seq: head.seq, done }).toEqual({ ver: 1, seq: 1, done: 1 });
    expect(second.tap.tally('head').ok).toBe(1);
    await expectTotals(f, keys, expected);
    expect(await f.watermark(keys[0])).toBe(1);
  });

  it('F2 crash after the head commit, before returning: the redelivery is all duplicates and writes nothing', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const first = f.container(); // balanced: the commit claims no flush, its tail wait is cut by the crash
    first.tap.crash((r) => (r.kind === 'head' ? 'after' : undefined));
    expect((await first.handler(sqsEvent(events))).batchItemFailures).toHaveLength(events.length);
    expect(first.tap.crashed).toBe(true);
    expect(first.tap.tally('head').ok).toBe(1);
    const committed = await f.state();
    expect({ ver: committed.head.ver, seq: committed.head.seq, journals: committed.journals.length }).toEqual(
      {
        ver: 1,
        seq: 1,
        journals: 1,
      },
    );

    const second = f.container();
    expect((await second.handler(sqsEvent(events))).batchItemFailures).toEqual([]);
    expect(second.outcomes[0]).toMatchObject({ counted: 0, duplicates: events.length });
    expect(second.tap.tally('journal').ok + second.tap.tally('head').ok).toBe(0);
    const after = await f.state();
    expect(after.head).toEqual(committed.head);
    expect(after.journals).toEqual(committed.journals);
    // Committed, not yet applied: the backstop applies it (nothing else will: no traffic follows).
    expect((await f.totals(keys[0])).day).toBe(0);
    expect(await f.container().backstop()).toMatchObject({ counted: events.length });
    await expectTotals(f, keys, expected);
    expect((await f.state()).done).toBe(1);
  });

  it('F3 crash after m of k counter updates: a takeover past the lease applies the same range once', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const first = f.container({ flush: 'fresh' });
    let counters = 0;
    first.tap.crash((r) => (r.kind === 'counter' && ++counters === 4 ? 'before' : undefined));
    expect((await first.handler(sqsEvent(events))).batchItemFailures).toHaveLength(events.length);
    expect(first.tap.crashed).toBe(true);
    await first.tap.idle();
    const applied = first.tap.tally('counter').ok;
    expect(applied).toBe(3);
    const stalled = await f.state();
    expect(stalled.head.fl).toMatchObject({ frm: 0, to: 1 });
    expect(stalled.done).toBe(0);

    // Another container, past the lease, with the crashed batch again and one of its own.
    const clock = new MovableClock();
    clock.offsetMs = PAST_LEASE_MS;
    const second = f.container({ flush: 'fresh', clock });
    const more = testProducer().events(5, keys[0]);
    expect((await second.handler(sqsEvent([...events, ...more]))).batchItemFailures).toEqual([]);
    expect(second.outcomes[0]).toMatchObject({ counted: more.length, duplicates: events.length });
    const takeover = second.tap.tally('counter');
    expect(takeover.refused).toBe(applied); // the takeover met the watermark on the three applied
    const k = takeover.ok + takeover.refused - 3; // its own flush touched keys[0]: key-day, period, producer
    expect(k).toBeGreaterThan(applied);
    await expectTotals(f, keys, [expected[0] + more.length, expected[1], expected[2]]);
    const { head, done } = await f.state();
    expect({ seq: head.seq, done }).toEqual({ seq: 2, done: 2 });
    expect(await f.watermark(keys[1])).toBe(1);
    expect(await f.watermark(keys[0])).toBe(2);
  });

  it('F3 crash after all counter updates, before DONE: the takeover finds every counter applied', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const first = f.container({ flush: 'fresh' });
    first.tap.crash((r) => (r.kind === 'done' ? 'before' : undefined));
    expect((await first.handler(sqsEvent(events))).batchItemFailures).toHaveLength(events.length);
    expect(first.tap.crashed).toBe(true);
    const k = first.tap.tally('counter').ok;
    expect(k).toBeGreaterThanOrEqual(9); // key-day, account period and producer share of 3 keys
    await expectTotals(f, keys, expected); // applied, though DONE is not
    expect((await f.state()).done).toBe(0);

    const clock = new MovableClock();
    clock.offsetMs = PAST_LEASE_MS;
    const taker = f.container({ clock });
    expect(await taker.backstop()).toMatchObject({ counted: events.length });
    expect(taker.tap.tally('counter')).toEqual({ ok: 0, refused: k, failed: 0 });
    expect(taker.tap.tally('done').ok).toBe(1);
    await expectTotals(f, keys, expected);
    expect((await f.state()).done).toBe(1);
  });

  it('F4 the head commit lands, then its answer times out: the re-read settles it, no second journal', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const c = f.container({ flush: 'fresh' });
    let timeouts = 0;
    c.tap.fault = async (request, send) => {
      const out = await send();
      if (request.kind === 'head' && timeouts++ === 0) throw timeout(request);
      return out;
    };
    expect((await c.handler(sqsEvent(events))).batchItemFailures).toEqual([]);
    expect(timeouts).toBeGreaterThan(0);
    expect(c.outcomes[0]).toMatchObject({ counted: events.length, duplicates: 0 });
    expect(c.tap.tally('journal').ok).toBe(1);
    const { head, journals, done } = await f.state();
    expect(journals).toHaveLength(1);
    expect({ seq: head.seq, done }).toEqual({ seq: 1, done: 1 });
    await expectTotals(f, keys, expected);
  });

  it('F4 the head commit times out unsent: the retry commits the same journal', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const c = f.container({ flush: 'fresh' });
    let timeouts = 0;
    c.tap.fault = async (request, send) => {
      if (request.kind === 'head' && timeouts++ === 0) throw timeout(request);
      return send();
    };
    expect((await c.handler(sqsEvent(events))).batchItemFailures).toEqual([]);
    expect(timeouts).toBeGreaterThan(1);
    expect(c.tap.tally('journal').ok).toBe(1);
    expect((await f.state()).journals).toHaveLength(1);
    await expectTotals(f, keys, expected);
  });

  it('F4 the head commit times out and lands only after the re-read: the retry meets its own claim', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const c = f.container({ flush: 'fresh' });
    let delayed: (() => Promise<unknown>) | undefined;
    let heads = 0;
    c.tap.fault = async (request, send) => {
      if (request.kind !== 'head') return send();
      if (heads++ === 0) {
        delayed = send; // on the wire, not arrived yet
        throw timeout(request);
      }
      // The retry is sent after the re-read found nothing: the first write arrives just before it.
      if (delayed) await delayed();
      return send();
    };
    expect((await c.handler(sqsEvent(events))).batchItemFailures).toEqual([]);
    expect(heads).toBe(2);
    expect(c.tap.tally('head')).toEqual({ ok: 1, refused: 1, failed: 0 });
    // Its own delayed write claimed the events: the retry finds them claimed (acknowledged as copies).
    expect(c.outcomes[0]).toMatchObject({ counted: 0, duplicates: events.length });
    const { head, journals } = await f.state();
    expect(journals).toHaveLength(1);
    expect(f.named(head.pend)).toEqual(journals);
    // The late write claimed a flush too, owned by this invocation: it runs it now, not a takeover
    // past the lease (what it did before commit.ts's ownFlush).
    await expectTotals(f, keys, expected);
    expect((await f.state()).done).toBe(1);
  });

  it('F5 a counter update lands, then its answer times out: the retry meets the watermark', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const c = f.container({ flush: 'fresh' });
    let timeouts = 0;
    c.tap.fault = async (request, send) => {
      const out = await send();
      if (request.kind === 'counter' && timeouts++ < 2) throw timeout(request);
      return out;
    };
    expect((await c.handler(sqsEvent(events))).batchItemFailures).toEqual([]);
    expect(timeouts).toBeGreaterThan(2);
    expect(c.tap.tally('counter').refused).toBe(2);
    await expectTotals(f, keys, expected);
    expect((await f.state()).done).toBe(1);
  });

  it('F13 counter writes throttled mid-flush: the commit stands, the flush resumes past the lease, exact', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const c = f.container({ flush: 'fresh' });
    let throttles = 0;
    let sent = 0;
    c.tap.fault = async (request, send) => {
      if (request.kind === 'counter' && sent++ >= 2) {
        throttles++;
        throw awsError(
          'ProvisionedThroughputExceededException',
          'Rate of requests exceeds the allowed throughput',
        );
      }
      return send();
    };
    // Committed, so acknowledged: the journal is durable and the flush is the ledger's to finish.
    expect((await c.handler(sqsEvent(events))).batchItemFailures).toEqual([]);
    expect(throttles).toBeGreaterThanOrEqual(3);
    await c.tap.idle();
    expect(c.tap.tally('counter').ok).toBe(2);
    const stopped = await f.state();
    expect({ done: stopped.done, fl: stopped.head.fl?.to }).toEqual({ done: 0, fl: 1 });
    const partial = await Promise.all(keys.map((k) => f.totals(k)));
    expect(partial.reduce((n, t) => n + t.day + t.month, 0)).toBeLessThan(2 * events.length);

    const clock = new MovableClock();
    clock.offsetMs = PAST_LEASE_MS;
    const later = f.container({ clock });
    expect(await later.backstop()).toMatchObject({ counted: events.length });
    expect(later.tap.tally('counter').refused).toBe(2);
    await expectTotals(f, keys, expected);
    expect((await f.state()).done).toBe(1);
  });

  it('F14 a flusher delayed past the lease, a second takes over, both finish: DONE once, exact', async () => {
    const f = await ledgerFixture(dlqUrl);
    const { keys, events, expected } = threeKeys();
    const slow = f.container({ flush: 'fresh' });
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = 0;
    slow.tap.fault = async (request, send) => {
      if (request.kind === 'counter') {
        held++;
        await released;
      }
      return send();
    };
    const slowRun = slow.handler(sqsEvent(events));
    await waitFor(() => held > 0);

    const clock = new MovableClock();
    clock.offsetMs = PAST_LEASE_MS;
    const taker = f.container({ clock });
    expect(await taker.backstop()).toMatchObject({ counted: events.length });
    await expectTotals(f, keys, expected);
    release();
    expect((await slowRun).batchItemFailures).toEqual([]);
    const k = taker.tap.tally('counter').ok;
    expect(slow.tap.tally('counter')).toEqual({ ok: 0, refused: k, failed: 0 });
    expect(taker.tap.tally('done')).toMatchObject({ ok: 1 });
    expect(slow.tap.tally('done')).toMatchObject({ ok: 0, refused: 1 });
    await expectTotals(f, keys, expected);
    const { head, done } = await f.state();
    expect({ done, fl: head.fl?.to }).toEqual({ done: 1, fl: 1 });
  });

  it('F15 a batch mixing events without numbering (marks) and numbered ones (ledger): both exact, twice', async () => {
    const f = await ledgerFixture(dlqUrl);
    const producer = testProducer();
    const [both, marksOnly, ledgerOnly] = [newKey(), newKey(), newKey()];
    const old = (count: number, keyId: string): UsageEvent[] =>
      Array.from({ length: count }, () =>
        newUsageEvent({ keyId, accountId: accountOf(keyId), now: new Date() }),
      );
    const batch = [
      ...old(4, both),
      ...producer.events(4, both),
      ...old(3, marksOnly),
      ...producer.events(5, ledgerOnly),
    ].sort(() => Math.random() - 0.5);
    const c = f.container({ flush: 'fresh' });
    expect((await c.handler(sqsEvent(batch))).batchItemFailures).toEqual([]);
    expect(c.outcomes[0]).toMatchObject({ counted: 16, duplicates: 0 });
    expect(c.tap.tally('journal').ok).toBe(1);
    expect(c.tap.tally('other').ok).toBeGreaterThan(0); // the marks' transactions
    expect((await f.rangeOf(producer.id))?.through).toBe(9);
    await expectTotals(f, [both, marksOnly, ledgerOnly], [8, 3, 5]);

    const again = f.container({ flush: 'fresh' });
    expect((await again.handler(sqsEvent(batch))).batchItemFailures).toEqual([]);
    expect(again.outcomes[0]).toMatchObject({ counted: 0, duplicates: 16 });
    await expectTotals(f, [both, marksOnly, ledgerOnly], [8, 3, 5]);
  });

  it('F16 traffic stops with journals pending (economy): the backstop flushes them', async () => {
    const f = await ledgerFixture(dlqUrl);
    const producer = testProducer();
    const keys = [newKey(), newKey()];
    const c = f.container({ flush: 'economy' });
    for (const [i, keyId] of [...keys, ...keys].entries()) {
      const started = Date.now();
      expect((await c.handler(sqsEvent(producer.events(i + 1, keyId)))).batchItemFailures).toEqual([]);
      expect(Date.now() - started).toBeLessThan(5_000); // no tail wait: economy's 30 s is the backstop's
    }
    const pending = await f.state();
    expect({
      seq: pending.head.seq,
      done: pending.done,
      pend: Object.keys(pending.head.pend).length,
    }).toEqual({
      seq: 4,
      done: 0,
      pend: 4,
    });
    expect(c.tap.tally('counter').ok).toBe(0);
    expect((await f.totals(keys[0] ?? '')).day).toBe(0);

    const schedule = f.container({ flush: 'economy' });
    await schedule.metering.handler(LEDGER_BACKSTOP_EVENT);
    expect(schedule.tap.tally('counter').ok).toBeGreaterThan(0);
    await expectTotals(f, keys, [1 + 3, 2 + 4]);
    expect((await f.state()).done).toBe(4);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 10_000) {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
