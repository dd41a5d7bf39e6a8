import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { METER_BACKDATE_LIMIT_MS } from '../../contracts/billing';
import { DEFAULT_ACCEPTANCE_WINDOW } from '../../contracts/config';
import { BillingMetric } from '../../contracts/metric-names';
import { utcDay } from '../../contracts/usage-event';
import { type Clock, systemClock } from '../platform/clock';
import { eachWithConcurrency } from '../platform/concurrency';
import { DependencyError } from '../platform/errors';
import type { MetricsRecorder } from '../platform/metrics';
import type { DayCount } from '../usage/usage-reader';
import type { ExportLedger, ReportedDay } from './export-ledger';
import type { UsageSink } from './provider';

export const DAY_MS = 24 * 3600_000;

/** An account that has a billing provider customer. */
export interface BillingCustomer {
  readonly accountId: string;
  readonly customerId: string;
}

/** Every account with a customer (billing-accounts.ts `listCustomers`). */
export type CustomerSource = () => AsyncIterable<BillingCustomer> | Promise<Iterable<BillingCustomer>>;

/** What the exporter reads of metering's counters (usage-reader.ts `UsageReader`). */
export interface UsageCounts {
  dailyCounts(scope: { accountId: string }, from: string, to: string): Promise<DayCount[]>;
}

/**
 * Days whose end is older than this are never pushed: Stripe refuses timestamps older than 35
 * days, and the margin keeps a push made at the edge from arriving just past it.
 */
export const PUSH_HORIZON_MS = METER_BACKDATE_LIMIT_MS - 3600_000;

export interface UsageExporterOptions {
  readonly sink: UsageSink;
  readonly ledger: ExportLedger;
  readonly usage: UsageCounts;
  readonly customers: CustomerSource;
  readonly metrics: MetricsRecorder;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Metering's late bound: days older than this can no longer change. @default 48 h */
  readonly lateWindowMs?: number;
  /** How long an exporter holds an account: longer than its pushes with all their retries. @default 5 min */
  readonly leaseTtlMs?: number;
  /** This exporter's name on the lease. @default a random id */
  readonly holder?: string;
  /** Accounts exported at once. @default 4 */
  readonly concurrency?: number;
}

/** One account's export. */
export interface AccountExport {
  /** Days pushed (delivered or duplicate) and recorded. */
  pushed: number;
  failed: number;
  /** Another exporter holds the account's lease: nothing was done. */
  leased: boolean;
  /** Seconds since the oldest usage still unreported (0 when none). */
  lagSeconds: number;
}

export interface ExportRun {
  accounts: number;
  pushed: number;
  failed: number;
  lagSeconds: number;
}

/**
 * Pushes each account-day's exact running total to the billing provider when the counters hold
 * more than the ledger says was reported: so a retry, a crash before the ledger write or a late
 * event only re-pushes a total, which a pre-aggregated meter keeps instead of adding (provider.ts).
 */
export class UsageExporter {
  readonly #o: UsageExporterOptions;
  readonly #clock: Clock;
  readonly #holder: string;

  constructor(options: UsageExporterOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#holder = options.holder ?? `exporter-${crypto.randomUUID()}`;
  }

  /** The days every run considers: today back through the late window (older days cannot change). */
  dueDays(now: Date): string[] {
    const lateMs = this.#o.lateWindowMs ?? DEFAULT_ACCEPTANCE_WINDOW.lateMs;
    return daysBetween(utcDay(now.getTime() - lateMs), utcDay(now.getTime()));
  }

  /** One scheduled export: the due days of every customer; a failing account never stops the others. */
  async runExport(now: Date = this.#clock.now()): Promise<ExportRun> {
    const customers: BillingCustomer[] = [];
    for await (const customer of await this.#o.customers()) customers.push(customer);
    const days = this.dueDays(now);
    const run: ExportRun = { accounts: customers.length, pushed: 0, failed: 0, lagSeconds: 0 };
    await eachWithConcurrency(customers, this.#o.concurrency ?? 4, async ({ accountId, customerId }) => {
      try {
        const result = await this.exportAccount(accountId, customerId, days, now);
        run.pushed += result.pushed;
        run.failed += result.failed;
        run.lagSeconds = Math.max(run.lagSeconds, result.lagSeconds);
      } catch (error) {
        // The ledger or the counters unavailable: this account waits for the next run.
        run.failed++;
        this.#o.logger.error('account export failed', { accountId, error });
      }
    });
    this.#o.metrics.addMetric(BillingMetric.exportLag, MetricUnit.Seconds, run.lagSeconds);
    return run;
  }

  /**
   * Before an invoice is finalized (`invoice.upcoming`, `invoice.created`): every day the provider
   * still accepts, not only the due ones, so a day an earlier run failed on reaches the invoice.
   */
  async exportBeforeInvoice(
    accountId: string,
    customerId: string,
    now: Date = this.#clock.now(),
  ): Promise<AccountExport> {
    return this.exportAccount(accountId, customerId, pushableDays(now), now);
  }

  /**
   * Pushes the account's `days` (`yyyy-mm-dd`) that are short at the provider per the ledger,
   * under the account's lease.
   */
  async exportAccount(
    accountId: string,
    customerId: string,
    days: readonly string[],
    now: Date = this.#clock.now(),
  ): Promise<AccountExport> {
    const result: AccountExport = { pushed: 0, failed: 0, leased: false, lagSeconds: 0 };
    const pushable = [...days].sort().filter((day) => dayEnd(day) > now.getTime() - PUSH_HORIZON_MS);
    const first = pushable[0];
    const last = pushable.at(-1);
    if (first === undefined || last === undefined) return result;
    const { ledger } = this.#o;
    if (!(await ledger.acquireLease(accountId, this.#holder, now, this.#o.leaseTtlMs ?? 5 * 60_000))) {
      return { ...result, leased: true };
    }
    try {
      const [counts, reported] = await Promise.all([
        this.#o.usage.dailyCounts({ accountId }, first, last),
        ledger.reportedDays(accountId, first, last),
      ]);
      const metered = new Map(counts.map(({ date, count }) => [date, count]));
      for (const day of pushable) {
        const total = metered.get(day) ?? 0;
        const entry = reported.get(day);
        if (total <= (entry?.reported ?? 0)) continue;
        const ok = await this.#pushDay({ accountId, customerId, day, total, entry, now });
        if (ok) {
          result.pushed++;
          continue;
        }
        result.failed++;
        result.lagSeconds = Math.max(result.lagSeconds, lagSeconds(day, entry, now));
      }
    } finally {
      await ledger.releaseLease(accountId, this.#holder).catch((error: unknown) => {
        this.#o.logger.warn('export lease not released (it expires)', { accountId, error });
      });
    }
    return result;
  }

  /** One push, recorded only after the provider accepted it. False: left for the next run. */
  async #pushDay(p: {
    accountId: string;
    customerId: string;
    day: string;
    total: number;
    entry: ReportedDay | undefined;
    now: Date;
  }): Promise<boolean> {
    const generation = p.entry?.generation ?? 0;
    const identifier = pushIdentifier(p.accountId, p.day, p.total, generation);
    const timestamp = new Date(Math.min(p.now.getTime(), dayEnd(p.day) - 1000));
    try {
      const outcome = await this.#o.sink.push({
        customerId: p.customerId,
        day: p.day,
        total: p.total,
        identifier,
        timestamp,
      });
      await this.#o.ledger.recordPush(p.accountId, p.day, {
        total: p.total,
        identifier,
        generation,
        pushedAt: p.now,
      });
      this.#o.metrics.addMetric(BillingMetric.pushes, MetricUnit.Count, 1);
      this.#o.logger.debug('usage pushed', { accountId: p.accountId, day: p.day, total: p.total, outcome });
      return true;
    } catch (error) {
      this.#o.metrics.addMetric(BillingMetric.pushFailures, MetricUnit.Count, 1);
      const log = error instanceof DependencyError ? this.#o.logger.warn : this.#o.logger.error;
      log.call(this.#o.logger, 'usage push failed', {
        accountId: p.accountId,
        day: p.day,
        total: p.total,
        error,
      });
      return false;
    }
  }
}

/**
 * Unique per push and deterministic per (account, day, total, generation): a crash-and-retry of the
 * same push repeats its identifier (the provider answers duplicate), a higher total or a re-push
 * after an invalidation (export-ledger.ts) gets a new one.
 */
export function pushIdentifier(accountId: string, day: string, total: number, generation: number): string {
  return `tg-${accountId}-${day}-${total}${generation > 0 ? `-g${generation}` : ''}`;
}

const IDENTIFIER = /^tg-(.+)-(\d{4}-\d{2}-\d{2})-(\d+)(?:-g\d+)?$/;

/** The account and day a push identifier names (meter error reports carry identifiers). */
export function parsePushIdentifier(identifier: string): { accountId: string; day: string } | undefined {
  const match = IDENTIFIER.exec(identifier);
  return match?.[1] && match[2] ? { accountId: match[1], day: match[2] } : undefined;
}

/** Every day whose usage the provider still accepts (Stripe: 35 days back, less a margin), oldest first. */
export function pushableDays(now: Date): string[] {
  const horizon = now.getTime() - PUSH_HORIZON_MS;
  return daysBetween(utcDay(horizon), utcDay(now.getTime())).filter((day) => dayEnd(day) > horizon);
}

/** The instant after the UTC day's last millisecond. */
export function dayEnd(day: string): number {
  return Date.parse(`${day}T00:00:00Z`) + DAY_MS;
}

/** Every UTC day from `from` to `to`, both included. */
export function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY_MS) {
    days.push(utcDay(t));
  }
  return days;
}

/** Unreported usage of the day happened after its last accepted push (or the day's start). */
export function lagSeconds(day: string, entry: ReportedDay | undefined, now: Date): number {
  const since = Math.max(dayEnd(day) - DAY_MS, entry?.pushedAt ? Date.parse(entry.pushedAt) : 0);
  return Math.max(0, Math.round((now.getTime() - since) / 1000));
}
