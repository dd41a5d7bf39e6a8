import type { Logger } from '@aws-lambda-powertools/logger';
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { LRUCache } from 'lru-cache';
import { DEFAULT_PLAN_ID, type Plan, periodBounds, type Quota } from '../../contracts/plans';
import { ALERT_MARK_PREFIX } from '../../contracts/resources';
import { utcDay } from '../../contracts/usage-event';
import { callDynamo, isConditionFailure } from '../shared/dynamodb';
import type { PlanStore } from '../shared/plan-store';
import { eachWithConcurrency } from './concurrency';
import type { UsageReader } from './usage-reader';

/** One email to an account's owner. */
export interface AlertMessage {
  to: string;
  subject: string;
  text: string;
}

/** Delivers alert emails: Amazon SES on AWS, the captured outbox locally (infra/local/mailbox.ts). */
export interface AlertSender {
  send(message: AlertMessage): Promise<void>;
}

/** The thresholds an owner is told about, as fractions of the quota. */
export const ALERT_THRESHOLDS = [0.8, 1] as const;

interface Subject {
  email?: string;
  plan?: Plan;
}

/**
 * Quota alerts, evaluated where the exact counters are written: after a batch is counted, each
 * account it touched whose plan has a quota is checked against 80 % and 100 % of it, so an owner
 * hears of a threshold within one batch of crossing it, with no polling.
 *
 * One email per threshold per period: each is guarded by a mark `ALERT#<account>` /
 * `<period start>#<percent>` in the usage table, put with `attribute_not_exists` before sending (a
 * second consumer, or a redelivered batch, finds it and sends nothing). Usage only grows within a
 * period, so a threshold crossed stays crossed: hovering around it cannot send it again, and the
 * marks expire with their period. A send that fails takes its mark back, so a later batch retries.
 */
export class QuotaAlerts {
  readonly #db: DynamoDBDocumentClient;
  readonly #usageTable: string;
  readonly #accountsTable: string;
  readonly #plans: PlanStore;
  readonly #reader: UsageReader;
  readonly #sender: AlertSender;
  readonly #logger: Logger;
  /** Accounts' email and plan, reread at most every 10 s per container (as the gate caches them). */
  readonly #subjects = new LRUCache<string, Subject>({ max: 10_000, ttl: 10_000 });

  constructor(options: {
    client: DynamoDBDocumentClient;
    usageTable: string;
    accountsTable: string;
    plans: PlanStore;
    reader: UsageReader;
    sender: AlertSender;
    logger: Logger;
  }) {
    this.#db = options.client;
    this.#usageTable = options.usageTable;
    this.#accountsTable = options.accountsTable;
    this.#plans = options.plans;
    this.#reader = options.reader;
    this.#sender = options.sender;
    this.#logger = options.logger;
  }

  /** Checks every account a batch counted events for. @returns the alerts sent */
  async afterBatch(accountIds: Iterable<string>, now: Date): Promise<number> {
    let sent = 0;
    await eachWithConcurrency([...new Set(accountIds)], 4, async (accountId) => {
      try {
        sent += await this.#check(accountId, now);
      } catch (error) {
        // Alerts never fail a batch: its counts are written. The next batch touching the account retries.
        this.#logger.error('quota alert check failed', { error, accountId });
      }
    });
    return sent;
  }

  async #check(accountId: string, now: Date): Promise<number> {
    const subject = await this.#subject(accountId);
    const quota = subject.plan?.quota;
    if (!quota || !subject.email) return 0;
    const { start, end } = periodBounds(quota.period, now);
    const used = await this.#reader.total({ accountId }, utcDay(start.getTime()), utcDay(now.getTime()));
    let sent = 0;
    for (const threshold of ALERT_THRESHOLDS) {
      if (used < Math.ceil(threshold * quota.requests)) continue;
      const mark = {
        pk: `${ALERT_MARK_PREFIX}${accountId}`,
        sk: `${start.toISOString()}#${threshold * 100}`,
      };
      if (!(await this.#claim(mark, end))) continue;
      try {
        await this.#sender.send(message(subject.email, subject.plan as Plan, quota, threshold, used, end));
        sent++;
      } catch (error) {
        await callDynamo(() => this.#db.send(new DeleteCommand({ TableName: this.#usageTable, Key: mark })));
        throw error;
      }
    }
    return sent;
  }

  /** @returns true when this call put the mark (so this call sends the alert) */
  async #claim(mark: { pk: string; sk: string }, periodEnd: Date): Promise<boolean> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new PutCommand({
            TableName: this.#usageTable,
            // Kept a day past the period, then expired by the table's TTL.
            Item: { ...mark, expiresAt: Math.ceil(periodEnd.getTime() / 1000) + 86_400 },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async #subject(accountId: string): Promise<Subject> {
    const cached = this.#subjects.get(accountId);
    if (cached) return cached;
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({
          TableName: this.#accountsTable,
          Key: { accountId },
          ProjectionExpression: 'email, planId',
        }),
      ),
    );
    const planId = typeof out.Item?.planId === 'string' ? out.Item.planId : DEFAULT_PLAN_ID;
    const plan = out.Item ? await this.#plans.getPlan(planId) : undefined;
    const subject: Subject = {
      ...(typeof out.Item?.email === 'string' ? { email: out.Item.email } : {}),
      ...(plan ? { plan } : {}),
    };
    this.#subjects.set(accountId, subject);
    return subject;
  }
}

function message(
  to: string,
  plan: Plan,
  quota: Quota,
  threshold: number,
  used: number,
  end: Date,
): AlertMessage {
  const percent = Math.round(threshold * 100);
  const period = quota.period === 'day' ? 'today' : 'this month';
  return {
    to,
    subject:
      threshold >= 1
        ? `You have used all ${quota.requests} requests of your ${plan.name} plan ${period}`
        : `You have used ${percent} % of your ${plan.name} plan's requests ${period}`,
    text: [
      `Your account has made ${used} of the ${quota.requests} requests its ${plan.name} plan allows ${period}.`,
      threshold >= 1
        ? 'Further requests are refused (429 quota_exceeded) until the quota resets.'
        : 'Requests past the quota will be refused (429 quota_exceeded) until it resets.',
      `The quota resets at ${end.toISOString()}.`,
    ].join('\n'),
  };
}
