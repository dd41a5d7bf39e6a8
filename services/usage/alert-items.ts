import type { NativeAttributeValue } from '@aws-sdk/lib-dynamodb';
import type { QuotaPeriod } from '../../contracts/plans';
import { ALERT_MARK_PREFIX } from '../../contracts/resources';

/**
 * The quota alerts' items in the usage table (alert-outbox.ts writes them): an alert's states,
 * its deterministic identity, and where its item and index entry live.
 */

/**
 * Where an alert is in its life:
 *  - `pending`: claimed, not handed to the sender yet (or refused by it for sure): any worker may
 *    send it once `retryAt` has passed.
 *  - `sending`: a worker holds it (`leaseToken`) and is calling, or about to call, the sender.
 *  - `unconfirmed`: the sender may have delivered it (no answer, a reset, a 5xx, or a lease that
 *    ran out with no outcome recorded): it is sent again only if no confirmation arrives before
 *    `retryAt` (the confirmation window).
 *  - `sent`: delivered (the sender said so, or its delivery event did); final.
 *  - `abandoned`: nobody to send it to any more (no account, no address, its period long over); final.
 * An item written by an earlier version (a bare mark, no state) counts as `sent`: that version sent
 * in the same call that put the mark.
 */
export type AlertState = 'pending' | 'sending' | 'unconfirmed' | 'sent' | 'abandoned';

/** One threshold of one account's quota period: what is sent at most once. */
export interface AlertKey {
  readonly accountId: string;
  readonly period: QuotaPeriod;
  /** The period's first instant (UTC). */
  readonly periodStart: Date;
  /** 80 or 100. */
  readonly percent: number;
}

/** What the email says, fixed when the alert is claimed, so every attempt sends the same message. */
export interface AlertFacts {
  readonly periodEnd: Date;
  readonly quotaRequests: number;
  readonly planName: string;
  /** Requests counted in the period when the threshold was found crossed. */
  readonly used: number;
}

export interface OutboxItem extends AlertKey, AlertFacts {
  readonly alertId: string;
  readonly state: AlertState;
  readonly attempts: number;
  /** When a worker may next take it (epoch ms). */
  readonly retryAt: number;
}

/** A lease on an item: the right to call the sender for it once. */
export interface Lease {
  readonly item: OutboxItem;
  readonly token: string;
}

export interface OutboxTiming {
  /** How long a worker holds an item: more than the sender's whole request timeout. */
  readonly leaseMs: number;
  /**
   * How long an item whose send may have been delivered waits for the delivery's confirmation
   * before it is sent again. The residual duplicate window: a confirmation later than this is a
   * second email.
   */
  readonly confirmWindowMs: number;
  /** The wait after a send the sender refused for sure, doubling per attempt up to `retryMaxMs`. */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
}

/**
 * SES answers within its 5 s request timeout (ses-sender.ts) or the call is abandoned; a lease of
 * 15 s covers that and a slow DynamoDB write after it. SES publishes a send event within seconds
 * (EventBridge delivery is usually sub-second, with retries for up to 24 h); 5 minutes lets all but
 * a delayed event confirm a send whose answer was lost. Both are the operator's trade: a longer
 * window, fewer duplicates and later retries of sends that never reached SES.
 */
export const DEFAULT_OUTBOX_TIMING: OutboxTiming = {
  leaseMs: 15_000,
  confirmWindowMs: 5 * 60_000,
  retryBaseMs: 30_000,
  retryMaxMs: 15 * 60_000,
};

/**
 * The partition of the outbox's index: one entry per alert not yet `sent` or `abandoned`, so the
 * schedule finds them with one Query of a small partition. `!` never occurs in an account id (a
 * Cognito `sub`), and the prefix keeps it inside metering's grant on alert items.
 */
export const OUTBOX_INDEX_PK = `${ALERT_MARK_PREFIX}!outbox`;

/** An account id that can be part of an alert id (and of SES message tags: letters, digits, `_`, `-`). */
const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,200}$/;

/**
 * The alert's deterministic identity: the same for every attempt, every worker and every period's
 * evaluation, so a delivery can be matched to its item (SES message tag, the local mailbox's
 * record) and back: `<percent>-<day|month>-<yyyymmdd>-<accountId>`.
 */
export function alertIdOf(key: AlertKey): string {
  if (!ACCOUNT_ID.test(key.accountId)) throw new Error(`account id unfit for an alert id: ${key.accountId}`);
  const day = key.periodStart.toISOString().slice(0, 10).replaceAll('-', '');
  return `${key.percent}-${key.period}-${day}-${key.accountId}`;
}

/** The alert key an alert id names, or undefined for a string that is none. */
export function parseAlertId(alertId: string): AlertKey | undefined {
  const match = /^(80|100)-(day|month)-(\d{4})(\d{2})(\d{2})-([A-Za-z0-9_-]{1,200})$/.exec(alertId);
  if (!match) return undefined;
  const [, percent, period, y, m, d, accountId] = match as unknown as string[];
  return {
    accountId: accountId as string,
    period: period as QuotaPeriod,
    periodStart: new Date(Date.UTC(Number(y), Number(m) - 1, Number(d))),
    percent: Number(percent),
  };
}

/** The item's key: the mark of earlier versions (`ALERT#<account>` / `<period start>#<percent>`). */
export function itemKey(key: AlertKey) {
  return {
    pk: `${ALERT_MARK_PREFIX}${key.accountId}`,
    sk: `${key.periodStart.toISOString()}#${key.percent}`,
  };
}

/** Kept a day past the period, then expired by the table's TTL (epoch seconds). */
export const expiry = (periodEnd: Date) => Math.ceil(periodEnd.getTime() / 1000) + 86_400;

/** An outbox item as stored, read back (an earlier version's bare mark counts as `sent`). */
export function toItem(raw: Record<string, NativeAttributeValue>): OutboxItem {
  const periodStart = new Date(String(raw.periodStart ?? String(raw.sk).split('#')[0]));
  return {
    alertId: String(raw.alertId ?? ''),
    accountId: String(raw.accountId ?? String(raw.pk).slice(ALERT_MARK_PREFIX.length)),
    period: (raw.period as QuotaPeriod | undefined) ?? 'day',
    periodStart,
    percent: Number(raw.percent ?? String(raw.sk).split('#')[1]),
    periodEnd: new Date(String(raw.periodEnd ?? periodStart.toISOString())),
    quotaRequests: Number(raw.quotaRequests ?? 0),
    planName: String(raw.planName ?? ''),
    used: Number(raw.used ?? 0),
    state: (raw.state as AlertState | undefined) ?? 'sent',
    attempts: Number(raw.attempts ?? 0),
    retryAt: Number(raw.retryAt ?? 0),
  };
}
