import { randomUUID } from 'node:crypto';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  type NativeAttributeValue,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { QuotaPeriod } from '../../contracts/plans';
import { ALERT_MARK_PREFIX } from '../../contracts/resources';
import { callDynamo, isConditionFailure } from '../platform/dynamodb';

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
const OUTBOX_INDEX_PK = `${ALERT_MARK_PREFIX}!outbox`;

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
function itemKey(key: AlertKey) {
  return {
    pk: `${ALERT_MARK_PREFIX}${key.accountId}`,
    sk: `${key.periodStart.toISOString()}#${key.percent}`,
  };
}

/** Kept a day past the period, then expired by the table's TTL (epoch seconds). */
const expiry = (periodEnd: Date) => Math.ceil(periodEnd.getTime() / 1000) + 86_400;

/**
 * The quota alerts' outbox, in the usage table: claim → lease → send → record the outcome. The
 * item is claimed once per threshold and period (`attribute_not_exists`), together with its index
 * entry in one transaction, so a claimed alert is always found again; it is `sent` only after the
 * sender (or its delivery event) said so. Every transition is a conditional update, so two workers
 * never both hold an item, and a worker that lost its lease records nothing over the next one's.
 */
export class AlertOutbox {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #timing: OutboxTiming;

  constructor(options: { client: DynamoDBDocumentClient; table: string; timing?: Partial<OutboxTiming> }) {
    this.#db = options.client;
    this.#table = options.table;
    this.#timing = { ...DEFAULT_OUTBOX_TIMING, ...options.timing };
  }

  get timing(): OutboxTiming {
    return this.#timing;
  }

  /** @returns true when this call claimed it (it was not in the outbox) */
  async claim(key: AlertKey, facts: AlertFacts, now: Date): Promise<boolean> {
    return (await this.claimAll([key], facts, now)).size > 0;
  }

  /**
   * Claims several alerts of one period in one transaction (all or none), so no crash can leave one
   * claimed and the other not; when some are claimed already, the others one by one.
   * @returns the ids this call claimed
   */
  async claimAll(keys: readonly AlertKey[], facts: AlertFacts, now: Date): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    try {
      await callDynamo(() =>
        this.#db.send(
          new TransactWriteCommand({
            TransactItems: keys.flatMap((key) => this.#claimItems(key, facts, now)),
          }),
        ),
      );
      return new Set(keys.map(alertIdOf));
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const claimed = new Set<string>();
    if (keys.length === 1) return claimed;
    for (const key of keys) if (await this.claim(key, facts, now)) claimed.add(alertIdOf(key));
    return claimed;
  }

  #claimItems(key: AlertKey, facts: AlertFacts, now: Date) {
    const alertId = alertIdOf(key);
    const expiresAt = expiry(facts.periodEnd);
    return [
      {
        Put: {
          TableName: this.#table,
          Item: {
            ...itemKey(key),
            alertId,
            state: 'pending' satisfies AlertState,
            accountId: key.accountId,
            period: key.period,
            periodStart: key.periodStart.toISOString(),
            percent: key.percent,
            periodEnd: facts.periodEnd.toISOString(),
            quotaRequests: facts.quotaRequests,
            planName: facts.planName,
            used: facts.used,
            claimedAt: now.toISOString(),
            attempts: 0,
            retryAt: 0,
            expiresAt,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      { Put: { TableName: this.#table, Item: { pk: OUTBOX_INDEX_PK, sk: alertId, expiresAt } } },
    ];
  }

  /**
   * Takes the item for one send, if it is due: `pending` or `unconfirmed` past its `retryAt`, or
   * `sending` under a lease that ran out. Taking it sets `retryAt` past the lease and the
   * confirmation window: a worker that dies holding it (before or after the send, which no one can
   * tell apart) leaves it to be sent again only once a delivery would have been confirmed.
   * @returns the lease, or undefined when the item is not due (someone holds it, it is final, or gone)
   */
  async lease(key: AlertKey, now: Date): Promise<Lease | undefined> {
    const token = randomUUID();
    const at = now.getTime();
    try {
      const out = await callDynamo(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: itemKey(key),
            UpdateExpression:
              'SET #state = :sending, leaseToken = :token, leaseUntil = :leaseUntil, retryAt = :retryAt, attempts = attempts + :one',
            ConditionExpression: '#state IN (:pending, :sending, :unconfirmed) AND retryAt <= :now',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: {
              ':sending': 'sending',
              ':pending': 'pending',
              ':unconfirmed': 'unconfirmed',
              ':token': token,
              ':leaseUntil': at + this.#timing.leaseMs,
              ':retryAt': at + this.#timing.leaseMs + this.#timing.confirmWindowMs,
              ':one': 1,
              ':now': at,
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return { item: toItem(out.Attributes ?? {}), token };
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /** The sender delivered it: final. A worker whose lease was taken over records it all the same. */
  async markSent(lease: Lease, now: Date, providerMessageId?: string): Promise<void> {
    await this.#settle(lease.item, 'sent', now, providerMessageId);
  }

  /**
   * A delivery event (SES's, or the local mailbox's) for this alert: final, whatever state the item
   * is in, since the email is out. @returns false when there is no such item or it was final already
   */
  async confirm(alertId: string, now: Date, providerMessageId?: string): Promise<boolean> {
    const key = parseAlertId(alertId);
    if (!key) return false;
    return this.#settle(key, 'sent', now, providerMessageId, 'confirmedAt');
  }

  /** Nobody to send it to: final, out of the index. */
  async abandon(key: AlertKey, now: Date, reason: string): Promise<void> {
    await this.#settle(key, 'abandoned', now, undefined, 'abandonedAt', reason);
  }

  /** The sender refused it for sure (nothing delivered): pending again, after a backoff. */
  async release(lease: Lease, now: Date, reason: string): Promise<void> {
    const wait = Math.min(this.#timing.retryMaxMs, this.#timing.retryBaseMs * 2 ** (lease.item.attempts - 1));
    await this.#afterLease(lease, 'pending', now.getTime() + wait, reason);
  }

  /** No telling whether the sender delivered it: sent again only if unconfirmed after the window. */
  async markUnconfirmed(lease: Lease, now: Date, reason: string): Promise<void> {
    await this.#afterLease(lease, 'unconfirmed', now.getTime() + this.#timing.confirmWindowMs, reason);
  }

  /**
   * The alerts not yet final, read through the index (one Query of a partition that holds only
   * them). Entries whose item is final or gone are removed here, so a crash between settling an
   * item and removing its entry leaves nothing behind.
   */
  async unsettled(): Promise<AlertKey[]> {
    const keys: AlertKey[] = [];
    let start: Record<string, NativeAttributeValue> | undefined;
    do {
      const page = await callDynamo(() =>
        this.#db.send(
          new QueryCommand({
            TableName: this.#table,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': OUTBOX_INDEX_PK },
            ConsistentRead: true,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      for (const entry of page.Items ?? []) {
        const key = parseAlertId(String(entry.sk));
        if (key) keys.push(key);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return keys;
  }

  /** The item as stored, or undefined. */
  async get(key: AlertKey): Promise<OutboxItem | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#table, Key: itemKey(key), ConsistentRead: true })),
    );
    return out.Item ? toItem(out.Item) : undefined;
  }

  /** Drops the index entry of an item that is final or gone. */
  async forget(key: AlertKey): Promise<void> {
    const item = await this.get(key);
    if (item && item.state !== 'sent' && item.state !== 'abandoned') return;
    await this.#dropIndexEntry(alertIdOf(key));
  }

  async #afterLease(lease: Lease, state: AlertState, retryAt: number, reason: string): Promise<void> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: itemKey(lease.item),
            UpdateExpression:
              'SET #state = :state, retryAt = :retryAt, lastError = :reason REMOVE leaseToken',
            // Only over its own lease: a confirmation that came first (the item is `sent`) or a
            // worker that took the item over since stays as it is.
            ConditionExpression: '#state = :sending AND leaseToken = :token',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: {
              ':state': state,
              ':retryAt': retryAt,
              ':reason': reason.slice(0, 500),
              ':sending': 'sending',
              ':token': lease.token,
            },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  /** @returns true when this call made the item final */
  async #settle(
    key: AlertKey,
    state: 'sent' | 'abandoned',
    now: Date,
    providerMessageId?: string,
    stamp = state === 'sent' ? 'sentAt' : 'abandonedAt',
    reason?: string,
  ): Promise<boolean> {
    let settled = true;
    try {
      await callDynamo(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: itemKey(key),
            UpdateExpression: `SET #state = :state, #stamp = :now${providerMessageId ? ', providerMessageId = :mid' : ''}${reason ? ', lastError = :reason' : ''} REMOVE leaseToken`,
            ConditionExpression: 'attribute_exists(pk) AND #state IN (:pending, :sending, :unconfirmed)',
            ExpressionAttributeNames: { '#state': 'state', '#stamp': stamp },
            ExpressionAttributeValues: {
              ':state': state,
              ':now': now.toISOString(),
              ':pending': 'pending',
              ':sending': 'sending',
              ':unconfirmed': 'unconfirmed',
              ...(providerMessageId ? { ':mid': providerMessageId } : {}),
              ...(reason ? { ':reason': reason.slice(0, 500) } : {}),
            },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      settled = false;
    }
    // Final (by this call or before it), or gone: the index entry has done its work.
    await this.#dropIndexEntry(alertIdOf(key));
    return settled;
  }

  async #dropIndexEntry(alertId: string): Promise<void> {
    await callDynamo(() =>
      this.#db.send(new DeleteCommand({ TableName: this.#table, Key: { pk: OUTBOX_INDEX_PK, sk: alertId } })),
    );
  }
}

function toItem(raw: Record<string, NativeAttributeValue>): OutboxItem {
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
