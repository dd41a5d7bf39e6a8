import { DeleteCommand, type DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { callDynamo, isConditionFailure, queryAll } from '../platform/dynamodb';
import { accountPartition, DAY_PREFIX, exportLeaseItem, reportedDayItem } from './billing-keys';

/** What the ledger says was reported to the billing provider for one account-day. */
export interface ReportedDay {
  /** The total the provider accepted last (0 after an invalidation). */
  readonly reported: number;
  /** The identifier of that push. */
  readonly identifier?: string;
  /** ISO 8601: when it was accepted. */
  readonly pushedAt?: string;
  /**
   * Bumped each time the day is invalidated (the provider refused a push after accepting it, or its
   * total came up short), so the re-push gets an identifier the provider has not seen.
   */
  readonly generation: number;
}

/** A push the provider accepted, to record. */
export interface AcceptedPush {
  readonly total: number;
  readonly identifier: string;
  /** The generation the push was made for: a day invalidated meanwhile is left for the next run. */
  readonly generation: number;
  readonly pushedAt: Date;
}

/**
 * The export ledger in the billing table (billing-keys.ts `reportedDayItem`, `exportLeaseItem`):
 * per account and UTC day what the provider accepted, and a per-account lease so one exporter at a
 * time pushes an account (two out-of-order pushes of different totals could leave the smaller one
 * as the day's value on a pre-aggregated meter).
 */
export class ExportLedger {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; table: string }) {
    this.#db = options.client;
    this.#table = options.table;
  }

  /** The account's reported days in [fromDay, toDay] (`yyyy-mm-dd`), strongly consistent. */
  async reportedDays(accountId: string, fromDay: string, toDay: string): Promise<Map<string, ReportedDay>> {
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': accountPartition(accountId),
        ':from': `${DAY_PREFIX}${fromDay}`,
        ':to': `${DAY_PREFIX}${toDay}`,
      },
      ConsistentRead: true,
    });
    const days = new Map<string, ReportedDay>();
    for (const item of items) {
      days.set(String(item.sk).slice(DAY_PREFIX.length), {
        reported: (item.reported as number | undefined) ?? 0,
        generation: (item.generation as number | undefined) ?? 0,
        ...(typeof item.identifier === 'string' ? { identifier: item.identifier } : {}),
        ...(typeof item.pushedAt === 'string' ? { pushedAt: item.pushedAt } : {}),
      });
    }
    return days;
  }

  /**
   * Records a push the provider accepted. Never lowers `reported` (a slower exporter's older
   * total loses), and leaves a day invalidated since the push was made alone.
   * @returns false when the condition kept the ledger as it was
   */
  async recordPush(accountId: string, day: string, push: AcceptedPush): Promise<boolean> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: reportedDayItem(accountId, day),
            UpdateExpression: 'SET reported = :total, identifier = :id, pushedAt = :at, generation = :gen',
            ConditionExpression:
              '(attribute_not_exists(reported) OR reported <= :total) AND ' +
              '(attribute_not_exists(generation) OR generation = :gen)',
            ExpressionAttributeValues: {
              ':total': push.total,
              ':id': push.identifier,
              ':at': push.pushedAt.toISOString(),
              ':gen': push.generation,
            },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Forgets what was reported for the day, so the next export pushes it again under a new
   * identifier: the provider refused the push after accepting it (a meter error report), or holds
   * less than it was sent. Only when the day's last push is `identifier`, if one is named (an error
   * about an older push is moot: the newer push replaced it).
   * @returns false when the day's last push is another one
   */
  async invalidate(accountId: string, day: string, now: Date, identifier?: string): Promise<boolean> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: reportedDayItem(accountId, day),
            UpdateExpression: 'SET reported = :zero, invalidatedAt = :at ADD generation :one',
            ...(identifier === undefined ? {} : { ConditionExpression: 'identifier = :id' }),
            ExpressionAttributeValues: {
              ':zero': 0,
              ':one': 1,
              ':at': now.toISOString(),
              ...(identifier === undefined ? {} : { ':id': identifier }),
            },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Takes the account's export lease until `now + ttlMs` unless another holder's lease is live.
   * The TTL outlasts a push with all its retries, so an exporter that dies holding it delays the
   * account by one lease, never blocks it.
   */
  async acquireLease(accountId: string, holder: string, now: Date, ttlMs: number): Promise<boolean> {
    const until = now.getTime() + ttlMs;
    try {
      await callDynamo(() =>
        this.#db.send(
          new PutCommand({
            TableName: this.#table,
            Item: {
              ...exportLeaseItem(accountId),
              holder,
              leaseUntil: until,
              expiresAt: Math.ceil(until / 1000) + 3600,
            },
            ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now OR holder = :holder',
            ExpressionAttributeValues: { ':now': now.getTime(), ':holder': holder },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Gives the lease back, if it is still this holder's. */
  async releaseLease(accountId: string, holder: string): Promise<void> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new DeleteCommand({
            TableName: this.#table,
            Key: exportLeaseItem(accountId),
            ConditionExpression: 'holder = :holder',
            ExpressionAttributeValues: { ':holder': holder },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}
