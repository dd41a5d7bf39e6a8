import { describe, expect, it } from 'vitest';
import {
  newProducerId,
  newUsageEvent,
  ProducerSequence,
  usageEventSchema,
} from '../../contracts/usage-event';

const base = { keyId: 'key_1', accountId: 'acct_1', now: new Date('2026-12-07T10:00:00Z') };

describe('producer sequence numbers on usage events', () => {
  it('numbers a producer’s events 1, 2, … with a time that never goes back, nor before the event', () => {
    const sequence = new ProducerSequence();
    expect(sequence.next(1_000, 2_000)).toEqual({ seq: 1, at: 2_000 });
    // The clock stepped back: `at` holds, so a gap's closing time bounds every event in it.
    expect(sequence.next(1_500, 1_800)).toEqual({ seq: 2, at: 2_000 });
    // An event time ahead of the clock: `at` is never before `ts`.
    expect(sequence.next(3_000, 2_500)).toEqual({ seq: 3, at: 3_000 });
  });

  it('carries pid, seq and at on the event, validated by the consumer’s schema', () => {
    const pid = newProducerId();
    const event = newUsageEvent({ ...base, producerId: pid, sequence: { seq: 7, at: base.now.getTime() } });
    expect(event).toMatchObject({ pid, seq: 7, at: base.now.getTime() });
    expect(usageEventSchema.parse(JSON.parse(JSON.stringify(event)))).toEqual(event);
  });

  it('refuses seq without at or pid, and at before ts', () => {
    const event = newUsageEvent({ ...base, producerId: newProducerId() });
    expect(usageEventSchema.safeParse({ ...event, seq: 1 }).success).toBe(false);
    expect(usageEventSchema.safeParse({ ...event, at: event.ts }).success).toBe(false);
    const { pid: _, ...noPid } = event;
    expect(usageEventSchema.safeParse({ ...noPid, seq: 1, at: event.ts }).success).toBe(false);
    expect(usageEventSchema.safeParse({ ...event, seq: 1, at: event.ts - 1 }).success).toBe(false);
    expect(usageEventSchema.safeParse({ ...event, seq: 1, at: event.ts }).success).toBe(true);
  });

  it('keeps events without a sequence valid: those in flight from an older gate', () => {
    const event = newUsageEvent(base);
    expect(usageEventSchema.parse(event)).not.toHaveProperty('seq');
  });
});
