import { z } from 'zod';

/**
 * The usage event: one per request key-api accepted. Producer (key-api) and consumer (metering)
 * both import this schema. `id` is minted by key-api and is the idempotency key end to end: every
 * copy of an event (producer retry, redelivery) carries the same id and is counted once.
 */
export const usageEventSchema = z.strictObject({
  v: z.literal(1),
  id: z.string().regex(/^[0-9A-Za-z_-]{16,64}$/, 'an id of 16-64 URL-safe characters'),
  keyId: z.string().min(1).max(128),
  accountId: z.string().min(1).max(128),
  /** Event time: when key-api accepted the request, epoch milliseconds. */
  ts: z.number().int().positive(),
  units: z.number().int().min(1).max(1_000_000),
  /**
   * Set only on a copy key-api sent again after an attempt whose outcome it could not know (a
   * timeout or a server error): the time of the first attempt, epoch ms. On Kinesis, where
   * redelivery is ruled out by sequence numbers rather than per-event marks, it tells the consumer
   * which records may have an earlier copy in their shard and where to look for it.
   */
  resent: z.number().int().positive().optional(),
});

export type UsageEvent = z.infer<typeof usageEventSchema>;

export function newUsageEvent(input: {
  keyId: string;
  accountId: string;
  now: Date;
  units?: number;
}): UsageEvent {
  return {
    v: 1,
    id: crypto.randomUUID(),
    keyId: input.keyId,
    accountId: input.accountId,
    ts: input.now.getTime(),
    units: input.units ?? 1,
  };
}

/** A day is the UTC calendar day of the event time, `yyyy-mm-dd`. */
export function utcDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

export const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
