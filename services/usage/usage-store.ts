import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type ConflictRetryPolicy, callDynamo, classified } from '../platform/dynamodb';
import { ConflictError } from '../platform/errors';
import { type CounterKey, eventMark, keyDayCounter } from './counter-keys';
import {
  type AggregateEvent,
  type ApplyResult,
  byRouteChunks,
  type CounterOwner,
  counterIncrements,
  type OrderedIncrement,
  type OrderedPeriodIncrement,
  type OrderedResult,
  sequenceOrderKey,
  type TransactionPart,
  watermarkAttribute,
} from './counter-updates';
import { type PeriodIncrement, periodIncrements, periodUpdate } from './period-counters';

/**
 * Metering's conflict retries: two consumers holding events of one key on one day write the same
 * counter, and can cancel each other's transactions. No caller is waiting and a batch has minutes, so
 * it retries more and longer than the APIs (CONFLICT_RETRY): five retries, waiting 620 to 1,240 ms
 * in all, as it always has. A conflict that outlasts them fails the aggregate: redelivered.
 */
export const METERING_CONFLICT_RETRY: ConflictRetryPolicy = { retries: 5, baseDelayMs: 40, maxDelayMs: 640 };

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
   * Commits one transaction: for every part, a conditional put of each event's dedupe mark and an
   * ADD of its events to the part's counter (at most 100 items in all, planTransactions). When some
   * marks already exist the transaction is cancelled as a whole, those events are dropped as
   * duplicates (and a counter all of whose events were dropped is left out) and the rest is sent
   * again: every committed transaction adds exactly the events it marks.
   *
   * A transaction cancelled by a concurrent writer (TransactionConflict) is sent again under
   * `conflictRetry` (the shared helper, services/platform/dynamodb.ts); a cancelled transaction wrote
   * nothing, so sending it again cannot count twice.
   *
   * @throws DependencyError when DynamoDB is unavailable (throttling, outage), ConflictError when
   * the conflicts outlast the retries, or the error itself for anything else (a bug). In every case
   * nothing of the failed transaction was written, so all of its events may be delivered again.
   */
  async applyTransaction(parts: readonly TransactionPart[], now: Date): Promise<ApplyResult> {
    const result: ApplyResult = { counted: 0, duplicates: 0, units: 0, writeRequests: 0 };
    let live = parts.map((part) => ({ owner: part.owner, events: [...part.events] }));
    for (;;) {
      live = live.filter((part) => part.events.length > 0);
      if (live.length === 0) return result;
      // Which event each item marks (undefined: a counter), to read cancellation reasons back.
      const marks: (AggregateEvent | undefined)[] = [];
      const items: Record<string, unknown>[] = live.flatMap((part) => {
        marks.push(...part.events, undefined);
        return [...part.events.map((event) => this.#mark(part.owner, event)), this.#counter(part, now)];
      });
      // The account-period items (and producers' shares) these events add to, once each, last: the
      // quota's one-item read commits with the counters and marks it sums.
      const { periods, producers } = periodIncrements(
        live.flatMap((part) => part.events.map((event) => ({ ...event, accountId: part.owner.accountId }))),
        this.#markTtlMs,
      );
      for (const increment of [...periods, ...producers]) items.push(this.#period(increment, now));
      try {
        await callDynamo(
          () => {
            result.writeRequests++;
            return this.#db.send(new TransactWriteCommand({ TransactItems: items }));
          },
          { conflicts: this.#conflictRetry },
        );
        for (const part of live) {
          result.counted += part.events.length;
          result.units += part.events.reduce((sum, e) => sum + e.units, 0);
        }
        return result;
      } catch (error) {
        // Marks that exist: those events were counted before. Drop them, send the rest.
        const reasons =
          error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
        const counted = new Set<string>();
        reasons.forEach((reason, i) => {
          const event = marks[i];
          if (reason?.Code === 'ConditionalCheckFailed' && event) counted.add(event.id);
        });
        if (counted.size === 0) throw error;
        result.duplicates += counted.size;
        live = live.map((part) => ({
          owner: part.owner,
          events: part.events.filter((e) => !counted.has(e.id)),
        }));
      }
    }
  }

  #mark(owner: CounterOwner, event: AggregateEvent) {
    return {
      Put: {
        TableName: this.#table,
        Item: {
          ...eventMark(event.id),
          keyId: owner.keyId,
          ts: event.ts,
          expiresAt: Math.ceil((event.ts + this.#markTtlMs) / 1000),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  #period(increment: PeriodIncrement, now: Date) {
    const update = periodUpdate(increment, now);
    return {
      Update: {
        TableName: this.#table,
        Key: increment.counter,
        UpdateExpression: `ADD ${update.adds} SET ${update.sets}`,
        ...(Object.keys(update.names).length > 0 ? { ExpressionAttributeNames: update.names } : {}),
        ExpressionAttributeValues: update.values,
      },
    };
  }

  #counter(part: { owner: CounterOwner; events: readonly AggregateEvent[] }, now: Date) {
    const { owner, events } = part;
    const split = counterIncrements(events);
    return {
      Update: {
        TableName: this.#table,
        Key: keyDayCounter(owner.accountId, owner.keyId, owner.day),
        // lastUsedAt is the newest event of the latest counted batch; with an unordered queue it
        // can trail the true last use by the pipeline's reordering, never by more.
        UpdateExpression: `ADD requests :r, units :u${split.adds} SET updatedAt = :now, keyId = :k, lastUsedAt = :last`,
        ExpressionAttributeNames: split.names,
        ExpressionAttributeValues: {
          ...split.values,
          ':r': events.length,
          ':u': events.reduce((sum, e) => sum + e.units, 0),
          ':now': now.toISOString(),
          ':k': owner.keyId,
          ':last': new Date(Math.max(...events.map((e) => e.ts))).toISOString(),
        },
      },
    };
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
   * Entries calling more than MAX_ROUTES_PER_UPDATE routes are added in several updates, in
   * sequence order, each moving the watermark on: no batch can make an expression too long.
   *
   * @throws DependencyError when DynamoDB is unavailable, ConflictError when a second condition
   * fails (another writer on this shard), or the error itself for anything else; nothing was added.
   */
  async applyInOrder(increment: OrderedIncrement, now: Date): Promise<OrderedResult> {
    const result: OrderedResult = { applied: 0, skipped: 0, writeRequests: 0 };
    for (const chunk of byRouteChunks(increment.entries)) {
      const part = await this.#inOrder(increment.counter, increment.shardId, chunk, (entries) => {
        const split = counterIncrements(entries);
        return {
          adds: `requests :r, units :u${split.adds}`,
          sets: 'updatedAt = :now, keyId = :k, lastUsedAt = :lastUse',
          names: split.names,
          values: {
            ...split.values,
            ':r': entries.length,
            ':u': entries.reduce((sum, e) => sum + e.units, 0),
            ':now': now.toISOString(),
            ':k': increment.keyId,
            ':lastUse': new Date(Math.max(...entries.map((e) => e.ts))).toISOString(),
          },
        };
      });
      result.applied += part.applied;
      result.skipped += part.skipped;
      result.writeRequests += part.writeRequests;
    }
    return result;
  }

  /**
   * Adds one shard's entries to an account-period item or a producer's share of it (counter-keys.ts),
   * guarded by the shard's watermark on that item exactly as applyInOrder guards a key-day counter.
   */
  async applyPeriodInOrder(increment: OrderedPeriodIncrement, now: Date): Promise<OrderedResult> {
    return this.#inOrder(increment.counter, increment.shardId, increment.entries, (entries) => {
      const [period] = increment.producer
        ? periodIncrements(entries, this.#markTtlMs).producers
        : periodIncrements(
            entries.map(({ pid: _, ...entry }) => entry),
            this.#markTtlMs,
          ).periods;
      if (!period) throw new Error('a period increment without entries');
      return periodUpdate(period, now);
    });
  }

  /** One conditional update per attempt over the entries above the watermark (applyInOrder). */
  async #inOrder<E extends { sequenceNumber: string }>(
    counter: CounterKey,
    shardId: string,
    all: readonly E[],
    build: (entries: readonly E[]) => {
      adds: string;
      sets: string;
      names: Record<string, string>;
      values: Record<string, unknown>;
    },
  ): Promise<OrderedResult> {
    const result: OrderedResult = { applied: 0, skipped: 0, writeRequests: 0 };
    const attribute = watermarkAttribute(shardId);
    let entries = all;
    for (let attempt = 0; entries.length > 0; attempt++) {
      const first = entries[0] as E;
      const last = entries[entries.length - 1] as E;
      const update = build(entries);
      try {
        result.writeRequests++;
        await this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: counter,
            UpdateExpression: `ADD ${update.adds} SET ${update.sets}, #wm = :last`,
            ConditionExpression: 'attribute_not_exists(#wm) OR #wm < :first',
            ExpressionAttributeNames: { '#wm': attribute, ...update.names },
            ExpressionAttributeValues: {
              ...update.values,
              ':first': sequenceOrderKey(first.sequenceNumber),
              ':last': sequenceOrderKey(last.sequenceNumber),
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
        const watermark = error.Item?.[attribute]?.S ?? (await this.#watermark(counter, attribute));
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

  /**
   * The highest sequence order key (sequenceOrderKey) `counter` has taken from `shardId`, read
   * consistently: what a Kinesis redrive compares a given-up range with, and the fallback for
   * engines that do not return the item with a failed condition.
   */
  async watermark(counter: CounterKey, shardId: string): Promise<string | undefined> {
    return this.#watermark(counter, watermarkAttribute(shardId));
  }

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
    const value: unknown = out.Item?.[attribute];
    return typeof value === 'string' ? value : undefined;
  }
}
