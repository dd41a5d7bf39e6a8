import { PEND_ENTRY_SEPARATOR } from '../../usage/ledger-port';

/**
 * When the ledger applies committed journals to the counters (docs/metering.md, "The SQS ledger"):
 * a flush writes each counter it touches once, however many journals it gathers, so flushing less
 * often writes less, at the cost of usage lag. A flush is due once the pending journals hold
 * `maxEvents` events or the oldest event they hold happened `maxDelayMs` ago. By event time, not
 * commit time: what the delay bounds is how far usage lags behind traffic, so a consumer working
 * off a backlog (its events old already) flushes every commit instead of holding them back more.
 */
export interface FlushPolicy {
  name: string;
  maxDelayMs: number;
  maxEvents: number;
}

/**
 * The profiles of the design note (§5.6): `fresh` flushes every commit (counters lag by the
 * batching window), `economy` 30 s or 5,000 events behind (with a 5 s batching window on the event
 * source). `balanced` flushes at 2,000 events or 5 s. A flush writes every counter it touches once
 * plus a fixed part (DONE, a head write, each account's period item and producer share), so the
 * more batches it gathers the less it writes per event: at 100 events/s, 4–5 s of batches is what
 * brings a flush's writes under 0.4 per event; at 1,000 events/s, two or three batches bring them
 * under 0.1. What an owner sees does not wait for the flush: usage reads add the committed journals
 * (services/usage/pending-usage.ts), so the flush only bounds how far the counter items themselves,
 * and with them the gate's view of other containers' traffic, trail the commits (docs/metering.md,
 * "Reads see commits, not flushes", and BENCHMARKS.md for the numbers behind both).
 */
export const FLUSH_PROFILES = {
  fresh: { name: 'fresh', maxDelayMs: 0, maxEvents: 1 },
  balanced: { name: 'balanced', maxDelayMs: 5_000, maxEvents: 2_000 },
  economy: { name: 'economy', maxDelayMs: 30_000, maxEvents: 5_000 },
} as const satisfies Record<string, FlushPolicy>;

export type FlushProfile = keyof typeof FLUSH_PROFILES;

/**
 * A committed journal as the head's `pend` names it: its id, and for the flush policy how many
 * events it holds and the time of the oldest of them (epoch ms). Stored as one string (`<id>~<events>~<at>`, numbers in
 * base 36) so the store keeps it as the opaque value the port's `pend` is.
 */
export interface PendingJournal {
  id: string;
  events: number;
  at: number;
}

export function pendingEntry(journal: PendingJournal): string {
  if (journal.id.includes(PEND_ENTRY_SEPARATOR))
    throw new Error(`a journal id may not hold ${PEND_ENTRY_SEPARATOR}: ${journal.id}`);
  return [journal.id, journal.events.toString(36), journal.at.toString(36)].join(PEND_ENTRY_SEPARATOR);
}

/** The journal an entry names; an entry without counts (another writer's) is read as one event, now. */
export function parsePendingEntry(entry: string, now: number): PendingJournal {
  const [id = entry, events, at] = entry.split(PEND_ENTRY_SEPARATOR);
  const count = events === undefined ? Number.NaN : Number.parseInt(events, 36);
  const time = at === undefined ? Number.NaN : Number.parseInt(at, 36);
  return { id, events: Number.isFinite(count) ? count : 1, at: Number.isFinite(time) ? time : now };
}

/** Whether the journals pending (committed, not yet in a flush) should be flushed now. */
export function flushDue(policy: FlushPolicy, pending: readonly PendingJournal[], now: number): boolean {
  if (pending.length === 0) return false;
  let events = 0;
  let oldest = Number.POSITIVE_INFINITY;
  for (const journal of pending) {
    events += journal.events;
    oldest = Math.min(oldest, journal.at);
  }
  return events >= policy.maxEvents || oldest <= now - policy.maxDelayMs;
}
