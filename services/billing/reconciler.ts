import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { BillingMetric } from '../../contracts/metric-names';
import { type Clock, systemClock } from '../platform/clock';
import type { MetricsRecorder } from '../platform/metrics';
import type { ExportLedger } from './export-ledger';
import {
  type BillingCustomer,
  type CustomerSource,
  lagSeconds,
  pushableDays,
  type UsageCounts,
  type UsageExporter,
} from './exporter';
import type { UsageSink } from './provider';

export interface ReconcilerOptions {
  readonly sink: UsageSink;
  readonly ledger: ExportLedger;
  readonly usage: UsageCounts;
  readonly customers: CustomerSource;
  /** Re-pushes the short days (under the account's lease, as every export). */
  readonly exporter: UsageExporter;
  readonly metrics: MetricsRecorder;
  readonly logger: Logger;
  readonly clock?: Clock;
}

/** One customer's comparison, after its short days were re-pushed. */
export interface CustomerReconciliation {
  readonly accountId: string;
  readonly customerId: string;
  /** Days the provider held less than the counters, re-pushed. */
  readonly repaired: string[];
  /** Days the provider holds more than the counters: never corrected by us, for a human to look at. */
  readonly over: string[];
  /** Units by which the provider's totals differ from the counters after the repair. */
  readonly drift: number;
  readonly lagSeconds: number;
}

export interface Reconciliation {
  readonly customers: CustomerReconciliation[];
  /** Customers that could not be compared (the provider or DynamoDB unavailable). */
  readonly failed: number;
  readonly drift: number;
  readonly lagSeconds: number;
}

/**
 * The daily proof that billed = metered: per customer and day over the days the provider still
 * accepts, the provider's own totals against Tollgate's counters and its ledger. Days that are
 * short are re-pushed (with a new identifier when the ledger believed them delivered); a day the
 * provider holds MORE of is logged and counted as drift, never lowered on our own (a pre-aggregated
 * day could be set lower by a push, but a credit is a decision, not a repair).
 */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #clock: Clock;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  async reconcile(now: Date = this.#clock.now()): Promise<Reconciliation> {
    const customers: BillingCustomer[] = [];
    for await (const customer of await this.#o.customers()) customers.push(customer);
    const results: CustomerReconciliation[] = [];
    let failed = 0;
    // One customer at a time: a daily job, gentle on the provider's rate limits.
    for (const customer of customers) {
      try {
        results.push(await this.reconcileCustomer(customer, now));
      } catch (error) {
        failed++;
        this.#o.logger.error('reconciliation failed for a customer', { ...customer, error });
      }
    }
    const drift = results.reduce((sum, r) => sum + r.drift, 0);
    const lag = results.reduce((max, r) => Math.max(max, r.lagSeconds), 0);
    this.#o.metrics.addMetric(BillingMetric.drift, MetricUnit.Count, drift);
    this.#o.metrics.addMetric(BillingMetric.exportLag, MetricUnit.Seconds, lag);
    return { customers: results, failed, drift, lagSeconds: lag };
  }

  async reconcileCustomer(customer: BillingCustomer, now: Date): Promise<CustomerReconciliation> {
    const { accountId, customerId } = customer;
    const days = pushableDays(now);
    const first = days[0] as string;
    const last = days.at(-1) as string;
    const counts = await this.#o.usage.dailyCounts({ accountId }, first, last);
    const metered = new Map(counts.map(({ date, count }) => [date, count]));
    let provider = await this.#o.sink.reportedTotals(customerId, first, last);
    const ledger = await this.#o.ledger.reportedDays(accountId, first, last);

    const short = days.filter((day) => (provider.get(day) ?? 0) < (metered.get(day) ?? 0));
    for (const day of short) {
      // Something was pushed and the provider does not hold it (refused later, lost): forget the
      // push, so the re-push goes out under an identifier the provider has not seen (a re-push of a
      // total it does hold only replaces the day's value with the same one).
      if ((ledger.get(day)?.reported ?? 0) > 0) await this.#o.ledger.invalidate(accountId, day, now);
    }
    if (short.length > 0) {
      this.#o.logger.warn('provider short of the counters: re-pushing', {
        accountId,
        customerId,
        days: short,
      });
      await this.#o.exporter.exportAccount(accountId, customerId, short, now);
      provider = await this.#o.sink.reportedTotals(customerId, first, last);
    }

    let drift = 0;
    let lag = 0;
    const over: string[] = [];
    const after = await this.#o.ledger.reportedDays(accountId, first, last);
    for (const day of days) {
      const has = provider.get(day) ?? 0;
      const should = metered.get(day) ?? 0;
      drift += Math.abs(has - should);
      if (has > should) over.push(day);
      if (has < should) lag = Math.max(lag, lagSeconds(day, after.get(day), now));
    }
    if (over.length > 0) {
      this.#o.logger.error('provider holds more usage than was metered (not corrected)', {
        accountId,
        customerId,
        days: over.map((day) => ({ day, provider: provider.get(day) ?? 0, metered: metered.get(day) ?? 0 })),
      });
    }
    return { accountId, customerId, repaired: short, over, drift, lagSeconds: lag };
  }
}
