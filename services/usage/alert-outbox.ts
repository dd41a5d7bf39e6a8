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
import { callDynamo, isConditionFailure } from '../platform/dynamodb';
import {
  type AlertFacts,
  type AlertKey,
  type AlertState,
  alertIdOf,
  DEFAULT_OUTBOX_TIMING,
  expiry,
  itemKey,
  type Lease,
  OUTBOX_INDEX_PK,
  type OutboxItem,
  type OutboxTiming,
  parseAlertId,
  toItem,
} from './alert-items';

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
