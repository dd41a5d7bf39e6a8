import { describe, expect, it } from 'vitest';
import { billingPeriod } from '../../services/billing/billing-summary';
import {
  lagSeconds,
  parsePushIdentifier,
  pushableDays,
  pushIdentifier,
} from '../../services/billing/exporter';

describe('push identifiers', () => {
  it('are deterministic per (account, day, total, generation) and name their account-day back', () => {
    expect(pushIdentifier('acct-1', '2026-12-06', 42, 0)).toBe('tg-acct-1-2026-12-06-42');
    expect(pushIdentifier('acct-1', '2026-12-06', 42, 0)).toBe(pushIdentifier('acct-1', '2026-12-06', 42, 0));
    expect(pushIdentifier('acct-1', '2026-12-06', 43, 0)).not.toBe(
      pushIdentifier('acct-1', '2026-12-06', 42, 0),
    );
    // A re-push after an invalidation must not be taken for the refused push (Stripe's 24 h uniqueness).
    expect(pushIdentifier('acct-1', '2026-12-06', 42, 1)).not.toBe(
      pushIdentifier('acct-1', '2026-12-06', 42, 0),
    );
    for (const generation of [0, 3]) {
      const id = pushIdentifier('a-b-c-2026-01-01', '2026-12-06', 7, generation);
      expect(parsePushIdentifier(id)).toEqual({ accountId: 'a-b-c-2026-01-01', day: '2026-12-06' });
    }
    expect(parsePushIdentifier('for-nobody')).toBeUndefined();
  });
});

describe('days the provider still accepts', () => {
  it('are the last 35 days less the margin, today included, oldest first', () => {
    const now = new Date('2026-12-07T06:00:00Z');
    const days = pushableDays(now);
    expect(days.at(-1)).toBe('2026-12-07');
    // 2026-11-02 ends 2026-11-03T00:00Z, 34 d 6 h before now: inside 35 days less an hour.
    expect(days[0]).toBe('2026-11-02');
    expect(days).not.toContain('2026-11-01');
  });
});

describe('export lag', () => {
  it('counts from the last accepted push of the day, or the day start when it never was pushed', () => {
    const now = new Date('2026-12-07T06:00:00Z');
    expect(lagSeconds('2026-12-07', undefined, now)).toBe(6 * 3600);
    expect(
      lagSeconds('2026-12-06', { reported: 3, generation: 0, pushedAt: '2026-12-07T05:59:00Z' }, now),
    ).toBe(60);
  });
});

describe('billing period', () => {
  it("is the subscription's current period when known, else the UTC month", () => {
    const now = new Date('2026-12-07T06:00:00Z');
    expect(billingPeriod(undefined, now)).toEqual({
      start: new Date('2026-12-01T00:00:00Z'),
      end: new Date('2027-01-01T00:00:00Z'),
    });
    const subscription = {
      status: 'active' as const,
      planId: 'pro',
      currentPeriodStart: '2026-11-15T10:00:00Z',
      currentPeriodEnd: '2026-12-15T10:00:00Z',
    };
    expect(billingPeriod(subscription, now)).toEqual({
      start: new Date('2026-11-15T10:00:00Z'),
      end: new Date('2026-12-15T10:00:00Z'),
    });
  });
});
