import type { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { LRUCache } from 'lru-cache';
import { type Plan, periodBounds, type QuotaPeriod } from '../../contracts/plans';
import type { PlanStore } from '../accounts/plan-store';
import { type Clock, systemClock } from '../platform/clock';
import { eachWithConcurrency } from '../platform/concurrency';
import { type AlertKey, alertIdOf, type OutboxItem, type OutboxTiming } from '../usage/alert-items';
import { AlertOutbox } from '../usage/alert-outbox';
import type { UsageReader } from '../usage/usage-reader';
import { type AlertMessage, AlertNotSentError, type AlertSender } from './alert-sender';
import { type OwnerAddresses, type OwnerRecord, storedAddresses } from './owner-address';

export type { AlertMessage, AlertSender } from './alert-sender';

/** The thresholds an owner is told about, as fractions of the quota. */
export const ALERT_THRESHOLDS = [0.8, 1] as const;

/** A counted event, as far as alerts care: whose, and when (its period is the one it counts in). */
export interface CountedEvent {
  readonly accountId: string;
  /** Event time, epoch ms. */
  readonly ts: number;
}

/** What one delivery attempt came to. */
export type DeliveryOutcome = 'sent' | 'not_due' | 'refused' | 'unconfirmed' | 'abandoned';

export interface ScheduleRun {
  /** Alerts in the outbox not yet final when the run began. */
  readonly unsettled: number;
  readonly outcomes: Partial<Record<DeliveryOutcome, number>>;
}

interface Subject {
  owner?: OwnerRecord;
  plan?: Plan;
}

/**
 * Quota alerts: one email at 80 % and one at 100 % of an account's quota, per period, exactly
 * once. Evaluated where the exact counters are written: after a batch is counted, for the period of
 * each event it counted (a late event of yesterday is checked against yesterday's quota), and sent
 * through the outbox (alert-outbox.ts): claimed, then leased, sent with the alert's identity, and
 * recorded sent only once the sender (or its delivery event) said so. An alert whose send failed, or
 * whose worker died, is sent by the schedule (`runSchedule`, every minute), not by a later batch,
 * which may never come once the gate refuses. Usage only grows within a period, so a threshold
 * crossed stays crossed.
 */
export class QuotaAlerts {
  readonly #plans: PlanStore;
  readonly #reader: UsageReader;
  readonly #sender: AlertSender;
  readonly #addresses: OwnerAddresses;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly outbox: AlertOutbox;
  /** Accounts' owner and plan, reread at most every 10 s per container (as the gate caches them). */
  readonly #subjects = new LRUCache<string, Subject>({ max: 10_000, ttl: 10_000 });
  /** Alerts this container saw final: a batch of an account past a threshold costs no write. */
  readonly #settled = new LRUCache<string, true>({ max: 50_000 });

  constructor(options: {
    client: DynamoDBDocumentClient;
    usageTable: string;
    plans: PlanStore;
    reader: UsageReader;
    sender: AlertSender;
    /** @default the address stored at sign-up */
    addresses?: OwnerAddresses;
    logger: Logger;
    clock?: Clock;
    timing?: Partial<OutboxTiming>;
  }) {
    this.#plans = options.plans;
    this.#reader = options.reader;
    this.#sender = options.sender;
    this.#addresses = options.addresses ?? storedAddresses;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.outbox = new AlertOutbox({
      client: options.client,
      table: options.usageTable,
      ...(options.timing ? { timing: options.timing } : {}),
    });
  }

  /**
   * Checks every (account, period) a batch counted events for. Never throws: the batch's counts are
   * written, and an alert that could not be claimed or sent here is the schedule's.
   * @returns the alerts sent
   */
  async afterBatch(events: Iterable<CountedEvent>, now: Date): Promise<number> {
    const byAccount = new Map<string, Set<number>>();
    for (const { accountId, ts } of events) {
      const times = byAccount.get(accountId) ?? new Set<number>();
      times.add(ts);
      byAccount.set(accountId, times);
    }
    let sent = 0;
    await eachWithConcurrency([...byAccount], 4, async ([accountId, times]) => {
      try {
        sent += await this.#check(accountId, times, now);
      } catch (error) {
        this.#logger.error('quota alert check failed; the schedule retries what was claimed', {
          error,
          accountId,
        });
      }
    });
    return sent;
  }

  /**
   * Sends every alert in the outbox that is due: claimed and never sent (its worker died), refused
   * and past its backoff, or unconfirmed past the confirmation window.
   */
  async runSchedule(now: Date): Promise<ScheduleRun> {
    const keys = await this.outbox.unsettled();
    const outcomes: Partial<Record<DeliveryOutcome, number>> = {};
    await eachWithConcurrency(keys, 4, async (key) => {
      try {
        const outcome = await this.#sweep(key, now);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      } catch (error) {
        this.#logger.error('quota alert retry failed; the next run retries it', {
          error,
          alertId: alertIdOf(key),
        });
      }
    });
    return { unsettled: keys.length, outcomes };
  }

  /** A delivery event for an alert (SES's "Email Sent", the local mailbox's): the alert is sent. */
  async confirmDelivered(alertId: string, messageId?: string): Promise<boolean> {
    const confirmed = await this.outbox.confirm(alertId, this.#clock.now(), messageId);
    this.#settled.set(alertId, true);
    return confirmed;
  }

  async #check(accountId: string, times: ReadonlySet<number>, now: Date): Promise<number> {
    const subject = await this.#subject(accountId);
    const quota = subject.plan?.quota;
    if (!quota || !subject.owner) return 0;
    const periods = new Map<number, { start: Date; end: Date }>();
    for (const ts of times) {
      const bounds = periodBounds(quota.period, new Date(ts));
      periods.set(bounds.start.getTime(), bounds);
    }
    let sent = 0;
    for (const { start, end } of periods.values()) {
      const keys = ALERT_THRESHOLDS.map((threshold) => ({
        threshold,
        key: { accountId, period: quota.period, periodStart: start, percent: Math.round(threshold * 100) },
      })).filter(({ key }) => !this.#settled.has(alertIdOf(key)));
      if (keys.length === 0) continue;
      const used = await this.#reader.usedInPeriod(accountId, quota.period, start);
      const crossed = keys.filter(({ threshold }) => used >= Math.ceil(threshold * quota.requests));
      if (crossed.length === 0) continue;
      const facts = {
        periodEnd: end,
        quotaRequests: quota.requests,
        planName: subject.plan?.name ?? '',
        used,
      };
      // Every crossed threshold is claimed before any is sent: a worker that dies sending the 80 %
      // alert has claimed the 100 % one too, for the schedule to find.
      const claimed = await this.outbox.claimAll(
        crossed.map(({ key }) => key),
        facts,
        now,
      );
      for (const { key } of crossed) {
        try {
          const outcome = await this.#deliver(key, now);
          if (outcome === 'sent') sent++;
          else if (!claimed.has(alertIdOf(key)) && outcome === 'not_due') await this.#noteIfFinal(key);
        } catch (error) {
          this.#logger.error('quota alert send failed; the schedule retries it', {
            error,
            alertId: alertIdOf(key),
          });
        }
      }
    }
    return sent;
  }

  /** One outbox entry on the schedule's run: sent if due, dropped if final or gone. */
  async #sweep(key: AlertKey, now: Date): Promise<DeliveryOutcome> {
    const item = await this.outbox.get(key);
    if (!item || item.state === 'sent' || item.state === 'abandoned') {
      await this.outbox.forget(key);
      return 'not_due';
    }
    if (item.retryAt > now.getTime()) return 'not_due';
    return this.#deliver(key, now);
  }

  /** Lease → message → send → outcome. */
  async #deliver(key: AlertKey, now: Date): Promise<DeliveryOutcome> {
    const lease = await this.outbox.lease(key, now);
    if (!lease) return 'not_due';
    const { item } = lease;
    let message: AlertMessage | undefined;
    try {
      message = await this.#message(item, now);
    } catch (error) {
      // Nothing was sent: pending again (Cognito or DynamoDB unavailable, say).
      await this.outbox.release(lease, this.#clock.now(), describe(error));
      throw error;
    }
    if (!message) {
      await this.outbox.abandon(item, this.#clock.now(), 'no owner or address for the account');
      this.#settled.set(item.alertId, true);
      return 'abandoned';
    }
    try {
      const sent = await this.#sender.send(message);
      await this.outbox.markSent(lease, this.#clock.now(), sent?.messageId);
      this.#settled.set(item.alertId, true);
      return 'sent';
    } catch (error) {
      if (error instanceof AlertNotSentError) {
        await this.outbox.release(lease, this.#clock.now(), describe(error));
        this.#logger.warn('quota alert refused by the sender; retried after a backoff', {
          error,
          alertId: item.alertId,
        });
        return 'refused';
      }
      await this.outbox.markUnconfirmed(lease, this.#clock.now(), describe(error));
      this.#logger.warn('quota alert may have been delivered; sent again only if unconfirmed', {
        error,
        alertId: item.alertId,
        confirmWindowMs: this.outbox.timing.confirmWindowMs,
      });
      return 'unconfirmed';
    }
  }

  /** An alert this container could not take: remembered if it is final, so it is not tried again. */
  async #noteIfFinal(key: AlertKey): Promise<void> {
    const item = await this.outbox.get(key);
    if (!item || item.state === 'sent' || item.state === 'abandoned') this.#settled.set(alertIdOf(key), true);
  }

  /** The email for an item, to the owner's current address; undefined when there is nobody to tell. */
  async #message(item: OutboxItem, now: Date): Promise<AlertMessage | undefined> {
    // Past its period and the day of grace its item lives for: too late to be of use.
    if (now.getTime() > item.periodEnd.getTime() + 86_400_000) return undefined;
    this.#subjects.delete(item.accountId);
    const { owner } = await this.#subject(item.accountId);
    if (!owner) return undefined;
    const to = await this.#addresses.currentAddress(owner);
    if (!to) return undefined;
    return message(item, to, now);
  }

  async #subject(accountId: string): Promise<Subject> {
    const cached = this.#subjects.get(accountId);
    if (cached) return cached;
    const found = await this.#plans.owner(accountId);
    const plan = found ? await this.#plans.getPlan(found.planId) : undefined;
    const subject: Subject = { ...(found ? { owner: found.owner } : {}), ...(plan ? { plan } : {}) };
    this.#subjects.set(accountId, subject);
    return subject;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** "today" / "this month" while the period lasts; its date once it is over (a late event's alert). */
function periodWords(period: QuotaPeriod, start: Date, end: Date, now: Date): string {
  if (now < end) return period === 'day' ? 'today' : 'this month';
  const iso = start.toISOString();
  return period === 'day' ? `on ${iso.slice(0, 10)}` : `in ${iso.slice(0, 7)}`;
}

function message(item: OutboxItem, to: string, now: Date): AlertMessage {
  const period = periodWords(item.period, item.periodStart, item.periodEnd, now);
  const full = item.percent >= 100;
  const plan = item.planName;
  return {
    id: item.alertId,
    to,
    subject: full
      ? `You have used all ${item.quotaRequests} requests of your ${plan} plan ${period}`
      : `You have used ${item.percent} % of your ${plan} plan's requests ${period}`,
    text: [
      `Your account has made ${item.used} of the ${item.quotaRequests} requests its ${plan} plan allows ${period}.`,
      full
        ? 'Further requests are refused (429 quota_exceeded) until the quota resets.'
        : 'Requests past the quota will be refused (429 quota_exceeded) until it resets.',
      `The quota resets at ${item.periodEnd.toISOString()}.`,
    ].join('\n'),
  };
}
