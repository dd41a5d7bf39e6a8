import type { BillingSubscriptionView, MeBilling } from '../../contracts/billing';
import { utcDay } from '../../contracts/usage-event';
import type { BillingApi } from './api';
import type { ExportLedger } from './export-ledger';
import { DAY_MS, dayEnd, daysBetween, type UsageCounts } from './exporter';

/** What the summary needs to know of an account's billing standing (billing-accounts.ts). */
export interface BillingStanding {
  readonly customerId?: string;
  readonly subscription?: BillingSubscriptionView & {
    /** ISO 8601: the current period's start; without it the period is the UTC month. */
    readonly currentPeriodStart?: string;
  };
}

export interface BillingStandingSource {
  standing(accountId: string): Promise<BillingStanding | undefined>;
}

/**
 * `GET /me/billing`: the account's customer and subscription, and for the billing period what the
 * counters hold against what the provider accepted (the ledger), so the page can say
 * "billed = metered" or show what an export has yet to push.
 */
export class BillingSummary implements Pick<BillingApi, 'summary'> {
  readonly #accounts: BillingStandingSource;
  readonly #usage: UsageCounts;
  readonly #ledger: ExportLedger;

  constructor(options: { accounts: BillingStandingSource; usage: UsageCounts; ledger: ExportLedger }) {
    this.#accounts = options.accounts;
    this.#usage = options.usage;
    this.#ledger = options.ledger;
  }

  async summary(accountId: string, now: Date): Promise<MeBilling> {
    const standing = await this.#accounts.standing(accountId);
    const period = billingPeriod(standing?.subscription, now);
    const days = periodDays(period, now);
    const first = days[0];
    const last = days.at(-1);
    let metered = 0;
    let reported = 0;
    if (first !== undefined && last !== undefined) {
      const wanted = new Set(days);
      const [counts, ledger] = await Promise.all([
        this.#usage.dailyCounts({ accountId }, first, last),
        this.#ledger.reportedDays(accountId, first, last),
      ]);
      for (const { date, count } of counts) if (wanted.has(date)) metered += count;
      for (const [day, entry] of ledger) if (wanted.has(day)) reported += entry.reported;
    }
    const subscription = standing?.subscription;
    return {
      ...(standing?.customerId ? { customerId: standing.customerId } : {}),
      ...(subscription
        ? {
            subscription: {
              status: subscription.status,
              planId: subscription.planId,
              currentPeriodEnd: subscription.currentPeriodEnd,
              ...(subscription.cancelAtPeriodEnd === undefined
                ? {}
                : { cancelAtPeriodEnd: subscription.cancelAtPeriodEnd }),
            },
          }
        : {}),
      usage: {
        period: { start: period.start.toISOString(), end: period.end.toISOString() },
        metered,
        reported,
        asOf: now.toISOString(),
      },
      inSync: metered === reported,
    };
  }
}

/** The subscription's current period when it is known, else the UTC month of `now`. */
export function billingPeriod(
  subscription: BillingStanding['subscription'] | undefined,
  now: Date,
): { start: Date; end: Date } {
  if (subscription?.currentPeriodStart && subscription.currentPeriodEnd) {
    return { start: new Date(subscription.currentPeriodStart), end: new Date(subscription.currentPeriodEnd) };
  }
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return { start, end };
}

/**
 * The UTC days whose usage the provider bills in the period: a day's push is timestamped at most
 * its last second (exporter.ts), so a day belongs to the period that second falls in. Up to today.
 */
function periodDays(period: { start: Date; end: Date }, now: Date): string[] {
  const to = Math.min(period.end.getTime() - 1, now.getTime());
  if (to < period.start.getTime()) return [];
  return daysBetween(utcDay(period.start.getTime() - DAY_MS), utcDay(to)).filter((day) => {
    const last = dayEnd(day) - 1000;
    return last >= period.start.getTime() && (last < period.end.getTime() || day === utcDay(now.getTime()));
  });
}
