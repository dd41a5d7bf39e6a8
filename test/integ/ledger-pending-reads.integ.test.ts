import { beforeAll, describe, expect, it } from 'vitest';
import { utcDay } from '../../contracts/usage-event';
import { sqsPendingUsage } from '../../services/usage/pending-usage';
import { UsageReader } from '../../services/usage/usage-reader';
import {
  type LedgerFixture,
  ledgerFixture,
  MovableClock,
  newKey,
  sqsEvent,
  testProducer,
} from '../support/ledger-harness';
import { localClients } from '../support/local-stack';
import { accountOf } from '../support/metering-consumer';
import { createTestQueue } from '../support/queues';

// Usage reads that add the SQS ledger's committed, unflushed journals (services/usage/pending-usage.ts),
// as user-api reads: exact before a flush, in the middle of one that crashed, and after the
// takeover that finishes it — never a journal counted twice, never one left out. Against DynamoDB
// Local, on a usage table of the case's own, with the fault harness's containers.

let dlqUrl = '';
let queueUrl = '';
beforeAll(async () => {
  const q = await createTestQueue(localClients().sqs, 'ledger-pr', {
    visibilityTimeoutSeconds: 2,
    maxReceiveCount: 5,
  });
  dlqUrl = q.dlqUrl;
  queueUrl = q.queueUrl;
});

/** Past the ledger's 10 s lease: another container may take a stalled flush over. */
const PAST_LEASE_MS = 11_000;

/** The reader user-api composes: the counters plus what the ledger committed and has not flushed. */
function overlayReader(f: LedgerFixture) {
  const client = localClients().doc;
  return new UsageReader({ client, table: f.table, pending: sqsPendingUsage({ client, table: f.table }) });
}

/** Every figure an owner sees for these keys, read through `reader`. */
async function figures(reader: UsageReader, keys: readonly string[], producerId: string) {
  const now = new Date();
  const day = utcDay(now.getTime());
  return Promise.all(
    keys.map(async (keyId) => {
      const accountId = accountOf(keyId);
      const scope = { accountId };
      return {
        day: await reader.keyDayCount(accountId, keyId, day),
        total: (await reader.keyTotals(accountId, now)).get(keyId)?.count ?? 0,
        month: await reader.usedInPeriod(accountId, 'month', now),
        share: (await reader.periodUsage(accountId, 'month', now, producerId)).byProducer,
        daily: await reader.dailyCounts(scope, day, day),
        hours: (await reader.hourlyCounts(scope, day, day)).map((h) => ({ keyId: h.keyId, hours: h.hours })),
        routes: await reader.routeDailyCounts(scope, day, day),
      };
    }),
  );
}

/** What `figures` reads when each key (its own account) has exactly `counts[i]` events today. */
function expectedFigures(keys: readonly string[], counts: readonly number[]) {
  const day = utcDay(Date.now());
  const hour = new Date().getUTCHours();
  return keys.map((keyId, i) => {
    const n = counts[i] as number;
    const hours = new Array<number>(24).fill(0);
    hours[hour] = n;
    return {
      day: n,
      total: n,
      month: n,
      share: n,
      daily: [{ date: day, count: n }],
      hours: [{ keyId, hours }],
      routes: [{ method: '*', route: '*', date: day, count: n }],
    };
  });
}

describe('usage reads with the SQS ledger’s pending journals (DynamoDB Local)', () => {
  it('a flush that crashed half way: reads stay exact before, during and after the takeover', async () => {
    const f = await ledgerFixture(dlqUrl);
    const overlay = overlayReader(f);
    const producer = testProducer();
    // Three keys of three accounts; the last is first used by the journal that will stall.
    const keys = [newKey('pr'), newKey('pr'), newKey('pr')] as const;
    const first = f.container({ flush: 'fresh' });
    const one = [...producer.events(4, keys[0]), ...producer.events(3, keys[1])];
    expect((await first.handler(sqsEvent(one))).batchItemFailures).toEqual([]);
    expect(await figures(overlay, keys.slice(0, 2), producer.id)).toEqual(
      expectedFigures(keys.slice(0, 2), [4, 3]),
    );

    // Journal 2 commits; its flush dies after its first counter update.
    const second = f.container({ flush: 'fresh' });
    let counters = 0;
    second.tap.crash((r) => (r.kind === 'counter' && ++counters === 2 ? 'before' : undefined));
    const two = [
      ...producer.events(5, keys[0]),
      ...producer.events(2, keys[1]),
      ...producer.events(6, keys[2]),
    ];
    await second.handler(sqsEvent(two));
    expect(second.tap.crashed).toBe(true);
    await second.tap.idle();
    expect(second.tap.tally('counter').ok).toBe(1);
    const stalled = await f.state();
    expect(stalled.head.fl).toMatchObject({ frm: 1, to: 2 });
    expect(stalled.done).toBe(1);

    const exact = expectedFigures(keys, [9, 5, 6]);
    // The counters alone are behind (one of them took journal 2, the rest did not)...
    const raw = await figures(f.reader, keys, producer.id);
    expect(raw).not.toEqual(exact);
    expect(raw[2]?.total).toBe(0);
    // ...and the read that adds the pending journal is exact, the counter that took it included.
    expect(await figures(overlay, keys, producer.id)).toEqual(exact);

    // A takeover past the lease finishes the same range: the counters alone are exact now, and the
    // read that adds pending journals does not count journal 2 a second time.
    const clock = new MovableClock();
    clock.offsetMs = PAST_LEASE_MS;
    expect(await f.container({ clock }).backstop()).toMatchObject({ counted: two.length });
    expect((await f.state()).done).toBe(2);
    expect(await figures(f.reader, keys, producer.id)).toEqual(exact);
    expect(await figures(overlay, keys, producer.id)).toEqual(exact);
  });

  it('balanced: a commit shows in reads at once, while its counters wait for the flush', async () => {
    const f = await ledgerFixture(dlqUrl);
    const overlay = overlayReader(f);
    const producer = testProducer();
    const keys = [newKey('pb'), newKey('pb')] as const;
    const c = f.container({ flush: 'balanced', usageQueueUrl: queueUrl });
    expect((await c.handler(sqsEvent(producer.events(7, keys[0])))).batchItemFailures).toEqual([]);
    expect((await c.handler(sqsEvent(producer.events(3, keys[1])))).batchItemFailures).toEqual([]);
    const pending = await f.state();
    expect({ seq: pending.head.seq, done: pending.done }).toEqual({ seq: 2, done: 0 });

    const exact = expectedFigures(keys, [7, 3]);
    expect(await figures(f.reader, keys, producer.id)).toEqual(expectedFigures(keys, [0, 0]).map(emptyDay));
    expect(await figures(overlay, keys, producer.id)).toEqual(exact);

    const clock = new MovableClock();
    clock.offsetMs = PAST_LEASE_MS;
    expect(await f.container({ clock, flush: 'balanced', usageQueueUrl: queueUrl }).backstop()).toMatchObject(
      {
        counted: 10,
      },
    );
    expect((await f.state()).done).toBe(2);
    expect(await figures(f.reader, keys, producer.id)).toEqual(exact);
    expect(await figures(overlay, keys, producer.id)).toEqual(exact);
  });
});

/** A key with no counter yet: no day, hour or route rows at all. */
function emptyDay(figure: ReturnType<typeof expectedFigures>[number]) {
  return { ...figure, daily: [], hours: [], routes: [] };
}
