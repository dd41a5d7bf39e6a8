import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type ConflictRetryPolicy, callDynamo, classified } from '../shared/dynamodb';
import { ConflictError } from '../shared/errors';
import { type CounterKey, counterKeys, eventMark } from './counter-keys';

/** TransactWriteItems takes 100 actions; three go to the counters, the rest to dedupe marks. */
export const MAX_EVENTS_PER_TRANSACTION = 97;

/**
 * Metering's conflict retries: its transactions share the account's day counter, so concurrent
 * consumers of one account can cancel each other. No caller is waiting and a batch has minutes, so
 * it retries more and longer than the APIs (CONFLICT_RETRY): five retries, waiting 620 to 1,240 ms
 * in all, as it always has. A conflict that outlasts them fails the aggregate: redelivered.
 */
export const METERING_CONFLICT_RETRY: ConflictRetryPolicy = { retries: 5, baseDelayMs: 40, maxDelayMs: 640 };

export interface AggregateEvent {
  id: string;
  ts: number;
  units: number;
}

/** Every event of one key on one UTC day in a batch: the consumer's unit of work and of failure. */
export interface Aggregate {
  keyId: string;
  accountId: string;
  day: string;
  events: AggregateEvent[];
}

export interface ApplyResult {
  /** Events counted by this call. */
  counted: number;
  /** Events that had been counted before (redelivery, producer retry): skipped. */
  duplicates: number;
  units: number;
  /** TransactWriteItems requests sent, including ones cancelled for duplicates or conflicts. */
  writeRequests: number;
}

/** What one shard's batch adds to one counter, its entries in ascending sequence order. */
export interface OrderedIncrement {
  counter: CounterKey;
  accountId: string;
  shardId: string;
  entries: { sequenceNumber: string; units: number; ts: number }[];
  /** Set `lastUsedAt` to the newest entry's event time (the key's all-time counter). */
  tracksLastUse?: boolean;
}

export interface OrderedResult {
  /** Entries added by this call. */
  applied: number;
  /** Entries at or below the counter's watermark: added by an earlier delivery, skipped. */
  skipped: number;
  writeRequests: number;
}

/**
 * Kinesis sequence numbers are decimal strings of up to 128 digits; DynamoDB compares strings
 * byte by byte. Prefixing the length makes that order the numeric one.
 */
export function sequenceOrderKey(sequenceNumber: string): string {
  return `${String(sequenceNumber.length).padStart(3, '0')}${sequenceNumber}`;
}

const watermarkAttribute = (shardId: string) => `seq#${shardId}`;

/**
 * Metering's writes to the usage counters (reads: usage-reader.ts). Writes are exact: each event's dedupe mark commits in the same
 * transaction as the counter increments it feeds, so a crash, a retry or a second delivery can
 * neither lose an event nor count it twice.
 */
export class UsageStore {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  /** How long a dedupe mark outlives its event: longer than any event can still be accepted. */
  readonly #markTtlMs: number;

  readonly #conflictRetry: ConflictRetryPolicy;

  constructor(options: {
    client: DynamoDBDocumentClient;
    table: string;
    markTtlMs?: number;
    /** @default METERING_CONFLICT_RETRY */
    conflictRetry?: ConflictRetryPolicy;
  }) {
    this.#db = options.client;
    this.#table = options.table;
    this.#markTtlMs = options.markTtlMs ?? 72 * 3600_000;
    this.#conflictRetry = options.conflictRetry ?? METERING_CONFLICT_RETRY;
  }

  /**
   * Counts an aggregate's events that were not counted before. One transaction per 97 events:
   * the marks (conditional puts) plus ADDs on the key's day, the key's total and the account's day.
   * When some marks already exist the transaction is cancelled as a whole, those events are
   * dropped as duplicates and the rest is tried again.
   *
   * A transaction cancelled by a concurrent writer (TransactionConflict) is sent again under
   * `conflictRetry` (the shared helper, services/shared/dynamodb.ts); a cancelled transaction wrote
   * nothing, so sending it again cannot count twice.
   *
   * @throws DependencyError when DynamoDB is unavailable (throttling, outage), ConflictError when
   * the conflicts outlast the retries, or the error itself for anything else (a bug). In every case
   * nothing of the failed transaction was written, so the whole aggregate may be delivered again.
   */
  async applyAggregate(aggregate: Aggregate, now: Date): Promise<ApplyResult> {
    const result: ApplyResult = { counted: 0, duplicates: 0, units: 0, writeRequests: 0 };
    const seen = new Set<string>();
    const unique: AggregateEvent[] = [];
    for (const event of aggregate.events) {
      if (seen.has(event.id)) result.duplicates++;
      else {
        seen.add(event.id);
        unique.push(event);
      }
    }
    for (let start = 0; start < unique.length; start += MAX_EVENTS_PER_TRANSACTION) {
      let chunk = unique.slice(start, start + MAX_EVENTS_PER_TRANSACTION);
      while (chunk.length > 0) {
        const events = chunk;
        try {
          // TransactionConflict (another writer touched the same counter) is retried in here.
          await callDynamo(
            () => {
              result.writeRequests++;
              return this.#db.send(this.#transaction(aggregate, events, now));
            },
            { conflicts: this.#conflictRetry },
          );
          result.counted += events.length;
          result.units += events.reduce((sum, e) => sum + e.units, 0);
          break;
        } catch (error) {
          // Marks that exist: those events were counted before. Drop them, send the rest.
          const reasons =
            error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
          const counted = new Set(
            events.filter((_, i) => reasons[i]?.Code === 'ConditionalCheckFailed').map((e) => e.id),
          );
          if (counted.size === 0) throw error;
          result.duplicates += counted.size;
          chunk = events.filter((e) => !counted.has(e.id));
        }
      }
    }
    return result;
  }

  #transaction(aggregate: Aggregate, events: AggregateEvent[], now: Date): TransactWriteCommand {
    const requests = events.length;
    const units = events.reduce((sum, e) => sum + e.units, 0);
    const lastTs = Math.max(...events.map((e) => e.ts));
    const updatedAt = now.toISOString();
    const counter = (key: Record<string, string>, extra = '') => ({
      Update: {
        TableName: this.#table,
        Key: key,
        UpdateExpression: `ADD requests :r, units :u SET updatedAt = :now, accountId = :a${extra}`,
        ExpressionAttributeValues: {
          ':r': requests,
          ':u': units,
          ':now': updatedAt,
          ':a': aggregate.accountId,
          ...(extra ? { ':last': new Date(lastTs).toISOString() } : {}),
        },
      },
    });
    return new TransactWriteCommand({
      TransactItems: [
        ...events.map((event) => ({
          Put: {
            TableName: this.#table,
            Item: {
              ...eventMark(event.id),
              keyId: aggregate.keyId,
              ts: event.ts,
              expiresAt: Math.ceil((event.ts + this.#markTtlMs) / 1000),
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        })),
        counter(counterKeys.keyDay(aggregate.keyId, aggregate.day)),
        // lastUsedAt is the newest event of the latest counted batch; with an unordered queue it
        // can trail the true last use by the pipeline's reordering, never by more.
        counter(counterKeys.keyTotal(aggregate.keyId), ', lastUsedAt = :last'),
        counter(counterKeys.accountDay(aggregate.accountId, aggregate.day)),
      ],
    });
  }

  /**
   * Adds one shard's entries to a counter unless an earlier delivery already did. The counter keeps
   * the highest sequence number it has taken from each shard (its watermark, one attribute per
   * shard) and the update is conditional on every entry being above it, so replaying a batch, or
   * part of one, adds nothing twice — one plain UpdateItem, no per-event marks, no transaction.
   * When the condition fails the entries at or below the watermark are dropped and the rest tried
   * again. Exact only if the entries of one counter and shard arrive in sequence order, which a
   * Kinesis event source mapping with ParallelizationFactor 1 guarantees.
   *
   * @throws DependencyError when DynamoDB is unavailable, ConflictError when a second condition
   * fails (another writer on this shard), or the error itself for anything else; nothing was added.
   */
  async applyInOrder(increment: OrderedIncrement, now: Date): Promise<OrderedResult> {
    const result: OrderedResult = { applied: 0, skipped: 0, writeRequests: 0 };
    const attribute = watermarkAttribute(increment.shardId);
    let entries = increment.entries;
    for (let attempt = 0; entries.length > 0; attempt++) {
      const first = entries[0] as (typeof entries)[number];
      const last = entries[entries.length - 1] as (typeof entries)[number];
      try {
        result.writeRequests++;
        await this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: increment.counter,
            UpdateExpression: `ADD requests :r, units :u SET updatedAt = :now, accountId = :a, #wm = :last${
              increment.tracksLastUse ? ', lastUsedAt = :lastUse' : ''
            }`,
            ConditionExpression: 'attribute_not_exists(#wm) OR #wm < :first',
            ExpressionAttributeNames: { '#wm': attribute },
            ExpressionAttributeValues: {
              ':r': entries.length,
              ':u': entries.reduce((sum, e) => sum + e.units, 0),
              ':now': now.toISOString(),
              ':a': increment.accountId,
              ':first': sequenceOrderKey(first.sequenceNumber),
              ':last': sequenceOrderKey(last.sequenceNumber),
              ...(increment.tracksLastUse
                ? { ':lastUse': new Date(Math.max(...entries.map((e) => e.ts))).toISOString() }
                : {}),
            },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        result.applied += entries.length;
        return result;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw classified(error);
        // A second failed condition would mean another writer on this shard: not ours to resolve.
        if (attempt > 0) throw new ConflictError('DynamoDB', { cause: error });
        const watermark = error.Item?.[attribute]?.S ?? (await this.#watermark(increment.counter, attribute));
        // The condition failed, so a watermark exists; not finding it is no outage but a bug.
        if (watermark === undefined) {
          throw new Error(`counter refused the entries but has no ${attribute}`, { cause: error });
        }
        const fresh = entries.filter((e) => sequenceOrderKey(e.sequenceNumber) > watermark);
        result.skipped += entries.length - fresh.length;
        entries = fresh;
      }
    }
    return result;
  }

  /** For engines that do not return the item with a failed condition. */
  async #watermark(counter: CounterKey, attribute: string): Promise<string | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({
          TableName: this.#table,
          Key: counter,
          ProjectionExpression: '#wm',
          ExpressionAttributeNames: { '#wm': attribute },
          ConsistentRead: true,
        }),
      ),
    );
    return out.Item?.[attribute] as string | undefined;
  }
}
