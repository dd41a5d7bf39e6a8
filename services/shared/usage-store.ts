import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { callDynamo, queryAll } from './dynamodb';
import { DependencyError } from './errors';

/** TransactWriteItems takes 100 actions; three go to the counters, the rest to dedupe marks. */
export const MAX_EVENTS_PER_TRANSACTION = 97;
const MAX_CONFLICT_RETRIES = 5;

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

export interface DayCount {
  date: string;
  count: number;
}

export interface KeyTotals {
  count: number;
  lastUsedAt?: string;
}

/** A counter item's key. A type alias, not an interface, so it stays assignable to `Record<string, string>`. */
export type CounterKey = { pk: string; sk: string };

const keyDay = (keyId: string, day: string): CounterKey => ({ pk: `KEY#${keyId}`, sk: `DAY#${day}` });
const keyTotal = (keyId: string): CounterKey => ({ pk: `KEY#${keyId}`, sk: 'TOTAL' });
const accountDay = (accountId: string, day: string): CounterKey => ({
  pk: `ACCOUNT#${accountId}`,
  sk: `DAY#${day}`,
});
/** The counters every event adds to: its key's day and all-time totals, its account's day. */
export const counterKeys = { keyDay, keyTotal, accountDay };

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

const eventMark = (id: string) => ({ pk: `EVENT#${id}`, sk: 'EVENT' });

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Usage counters in DynamoDB. Writes are exact: each event's dedupe mark commits in the same
 * transaction as the counter increments it feeds, so a crash, a retry or a second delivery can
 * neither lose an event nor count it twice.
 */
export class UsageStore {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  /** How long a dedupe mark outlives its event: longer than any event can still be accepted. */
  readonly #markTtlMs: number;

  /** `markTtlMs` matters only to the writer (the metering consumer); readers may leave it out. */
  constructor(options: { client: DynamoDBDocumentClient; table: string; markTtlMs?: number }) {
    this.#db = options.client;
    this.#table = options.table;
    this.#markTtlMs = options.markTtlMs ?? 72 * 3600_000;
  }

  /**
   * Counts an aggregate's events that were not counted before. One transaction per 97 events:
   * the marks (conditional puts) plus ADDs on the key's day, the key's total and the account's day.
   * When some marks already exist the transaction is cancelled as a whole, those events are
   * dropped as duplicates and the rest is tried again.
   *
   * @throws DependencyError when DynamoDB refuses for another reason (throttling, outage); nothing
   * of the failed transaction was written, so the whole aggregate may be retried.
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
      let conflicts = 0;
      while (chunk.length > 0) {
        try {
          result.writeRequests++;
          await this.#db.send(this.#transaction(aggregate, chunk, now));
          result.counted += chunk.length;
          result.units += chunk.reduce((sum, e) => sum + e.units, 0);
          break;
        } catch (error) {
          if (!(error instanceof TransactionCanceledException))
            throw new DependencyError('DynamoDB', { cause: error });
          const reasons = error.CancellationReasons ?? [];
          const counted = new Set(
            chunk.filter((_, i) => reasons[i]?.Code === 'ConditionalCheckFailed').map((e) => e.id),
          );
          if (counted.size > 0) {
            result.duplicates += counted.size;
            chunk = chunk.filter((e) => !counted.has(e.id));
            continue;
          }
          // TransactionConflict: another writer touched the same counter; back off and try again.
          if (reasons.some((r) => r.Code === 'TransactionConflict') && conflicts++ < MAX_CONFLICT_RETRIES) {
            await sleep(20 * 2 ** conflicts + Math.random() * 20);
            continue;
          }
          throw new DependencyError('DynamoDB', { cause: error });
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
        counter(keyDay(aggregate.keyId, aggregate.day)),
        // lastUsedAt is the newest event of the latest counted batch; with an unordered queue it
        // can trail the true last use by the pipeline's reordering, never by more.
        counter(keyTotal(aggregate.keyId), ', lastUsedAt = :last'),
        counter(accountDay(aggregate.accountId, aggregate.day)),
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
   * @throws DependencyError when DynamoDB refuses for another reason; nothing was added.
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
        // A second failed condition would mean another writer on this shard: not ours to resolve.
        if (!(error instanceof ConditionalCheckFailedException) || attempt > 0)
          throw new DependencyError('DynamoDB', { cause: error });
        const watermark = error.Item?.[attribute]?.S ?? (await this.#watermark(increment.counter, attribute));
        if (watermark === undefined) throw new DependencyError('DynamoDB', { cause: error });
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

  /** A key's count for one day; eventually consistent is enough for key-api's informative figure. */
  async keyDayCount(keyId: string, day: string): Promise<number> {
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#table, Key: keyDay(keyId, day) })),
    );
    return (out.Item?.requests as number | undefined) ?? 0;
  }

  /** Daily counts in [from, to] for a key or an account; days without usage are absent. */
  async dailyCounts(
    scope: { keyId: string } | { accountId: string },
    from: string,
    to: string,
  ): Promise<DayCount[]> {
    const pk = 'keyId' in scope ? `KEY#${scope.keyId}` : `ACCOUNT#${scope.accountId}`;
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': pk, ':from': `DAY#${from}`, ':to': `DAY#${to}` },
      ProjectionExpression: 'sk, requests',
      ConsistentRead: true,
    });
    const days: DayCount[] = items.map((item) => ({
      date: (item.sk as string).slice(4),
      count: (item.requests as number | undefined) ?? 0,
    }));
    return days;
  }

  /** All-time totals for several keys (BatchGetItem, 100 keys a request). */
  async keyTotals(keyIds: readonly string[]): Promise<Map<string, KeyTotals>> {
    const totals = new Map<string, KeyTotals>();
    for (let i = 0; i < keyIds.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = keyIds.slice(i, i + 100).map(keyTotal);
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        const batch: Record<string, unknown>[] = keys;
        const out: BatchGetCommandOutput = await callDynamo(() =>
          this.#db.send(
            new BatchGetCommand({
              RequestItems: { [this.#table]: { Keys: batch, ConsistentRead: true } },
            }),
          ),
        );
        for (const item of out.Responses?.[this.#table] ?? []) {
          totals.set((item.pk as string).slice(4), {
            count: (item.requests as number | undefined) ?? 0,
            ...(typeof item.lastUsedAt === 'string' ? { lastUsedAt: item.lastUsedAt } : {}),
          });
        }
        keys = out.UnprocessedKeys?.[this.#table]?.Keys;
        if (keys?.length) {
          if (attempt >= 5) throw new DependencyError('DynamoDB');
          await sleep(50 * 2 ** attempt);
        }
      }
    }
    return totals;
  }
}
