import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactGetCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { DEFAULT_ACCEPTANCE_WINDOW } from '../../contracts/config';
import type { QuotaPeriod } from '../../contracts/plans';
import { ANY_METHOD, ANY_ROUTE, utcDay } from '../../contracts/usage-event';
import { eachWithConcurrency } from '../platform/concurrency';
import { callDynamo, isConditionFailure, queryAll } from '../platform/dynamodb';
import { DependencyError } from '../platform/errors';
import {
  accountPartition,
  COUNTER_PREFIX,
  dayAttribute,
  dayRange,
  KEY_TOTALS_PREFIX,
  keyDayCounter,
  keyTotal,
  monthOf,
  parseCounterSortKey,
  parseKeyTotalSortKey,
  parseRouteAttribute,
  periodCounter,
  producerCounter,
} from './counter-keys';

export interface DayCount {
  date: string;
  count: number;
}

/** One route's requests on one day: what `GET /usage?groupBy=route` is made of. */
export interface RouteDayCount {
  route: string;
  method: string;
  date: string;
  count: number;
}

/** An account's requests in a quota period, and the share of them one gate container published. */
export interface PeriodUsage {
  used: number;
  /** What the counters hold of the named producer's events in the period (0 when none was named). */
  byProducer: number;
}

export interface KeyTotals {
  count: number;
  lastUsedAt?: string;
}

/**
 * The one way other services read what metering counted (key-api's usage figure, user-api's
 * series and totals), over metering's own key layout (counter-keys.ts). Everything an owner sees
 * is read strongly consistent.
 */
export class UsageReader {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;

  readonly #lateMs: number;

  /** @param options.lateMs the acceptance window's late bound: days older are closed (keyTotals) */
  constructor(options: { client: DynamoDBDocumentClient; table: string; lateMs?: number }) {
    this.#db = options.client;
    this.#table = options.table;
    this.#lateMs = options.lateMs ?? DEFAULT_ACCEPTANCE_WINDOW.lateMs;
  }

  /** A key's count for one day; eventually consistent is enough for key-api's informative figure. */
  async keyDayCount(accountId: string, keyId: string, day: string): Promise<number> {
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#table, Key: keyDayCounter(accountId, keyId, day) })),
    );
    return (out.Item?.requests as number | undefined) ?? 0;
  }

  /**
   * Daily counts in [from, to] for an account (all its keys, revoked ones included) or one of its
   * keys; days without usage are absent. One Query of the account's partition.
   */
  async dailyCounts(
    scope: { accountId: string; keyId?: string },
    from: string,
    to: string,
  ): Promise<DayCount[]> {
    const byDay = new Map<string, number>();
    for (const { item, day } of await this.#dayItems(scope, from, to, 'sk, requests')) {
      byDay.set(day, (byDay.get(day) ?? 0) + ((item.requests as number | undefined) ?? 0));
    }
    return [...byDay].map(([date, count]) => ({ date, count }));
  }

  /**
   * Daily counts in [from, to] per route and method, for an account or one of its keys; only days
   * and routes with usage are present. The same Query as dailyCounts, whole items (each route is an
   * attribute of its key's day counter). Requests a counter holds without a route attribute (counted
   * before routes were recorded) are reported under `*` / `*`, so the routes always add up to the
   * day's total.
   */
  async routeDailyCounts(
    scope: { accountId: string; keyId?: string },
    from: string,
    to: string,
  ): Promise<RouteDayCount[]> {
    const items = await this.#dayItems(scope, from, to);
    const counts = new Map<string, RouteDayCount>();
    const add = (method: string, route: string, date: string, count: number) => {
      const id = `${method} ${route}\u0000${date}`;
      const entry = counts.get(id) ?? { route, method, date, count: 0 };
      entry.count += count;
      counts.set(id, entry);
    };
    for (const { item, day } of items) {
      let routed = 0;
      for (const [name, value] of Object.entries(item)) {
        const route = parseRouteAttribute(name);
        if (!route || typeof value !== 'number') continue;
        add(route.method, route.route, day, value);
        routed += value;
      }
      const rest = ((item.requests as number | undefined) ?? 0) - routed;
      if (rest > 0) add(ANY_METHOD, ANY_ROUTE, day, rest);
    }
    return [...counts.values()];
  }

  /**
   * The counter items of the days `from` to `to` in the account's partition (one strongly
   * consistent Query), with their day, only the scope's key's when it names one.
   */
  async #dayItems(
    scope: { accountId: string; keyId?: string },
    from: string,
    to: string,
    projection?: string,
  ): Promise<{ item: Record<string, unknown>; day: string }[]> {
    const range = dayRange(from, to);
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': accountPartition(scope.accountId),
        ':from': range.from,
        ':to': range.to,
      },
      ...(projection ? { ProjectionExpression: projection } : {}),
      ConsistentRead: true,
    });
    const inScope: { item: Record<string, unknown>; day: string }[] = [];
    for (const item of items) {
      const { day, keyId } = parseCounterSortKey(item.sk as string);
      if (scope.keyId === undefined || keyId === scope.keyId) inScope.push({ item, day });
    }
    return inScope;
  }

  /**
   * An account's (or one key's) requests from day `from` to day `to`, inclusive: what a quota
   * counts. One strongly consistent Query of the account's partition, projected to the counts.
   */
  async total(scope: { accountId: string; keyId?: string }, from: string, to: string): Promise<number> {
    const days = await this.dailyCounts(scope, from, to);
    return days.reduce((sum, day) => sum + day.count, 0);
  }

  /**
   * An account's requests in the quota period (`day` or `month`, UTC) that holds `at`: the one
   * definition of "usage this period" the gate, quota alerts and the user API share. One strongly
   * consistent read of one item (the account-period item), however many keys and days the account has.
   */
  async usedInPeriod(accountId: string, period: QuotaPeriod, at: Date): Promise<number> {
    return (await this.periodUsage(accountId, period, at)).used;
  }

  /**
   * usedInPeriod, and the share of it the gate container `producerId` published, from one
   * snapshot: a TransactGetItems of the account-period item and the producer's, isolated from the
   * transactions that write both, so the share is never ahead of or behind the total it is part of.
   */
  async periodUsage(
    accountId: string,
    period: QuotaPeriod,
    at: Date,
    producerId?: string,
  ): Promise<PeriodUsage> {
    const day = utcDay(at.getTime());
    const month = monthOf(day);
    const attribute = period === 'day' ? dayAttribute(day) : 'requests';
    const read = { ProjectionExpression: '#n', ExpressionAttributeNames: { '#n': attribute } };
    const countOf = (item: Record<string, unknown> | undefined) =>
      (item?.[attribute] as number | undefined) ?? 0;
    if (producerId === undefined) {
      const out = await callDynamo(() =>
        this.#db.send(
          new GetCommand({
            TableName: this.#table,
            Key: periodCounter(accountId, month),
            ...read,
            ConsistentRead: true,
          }),
        ),
      );
      return { used: countOf(out.Item), byProducer: 0 };
    }
    const out = await callDynamo(() =>
      this.#db.send(
        new TransactGetCommand({
          TransactItems: [
            { Get: { TableName: this.#table, Key: periodCounter(accountId, month), ...read } },
            {
              Get: { TableName: this.#table, Key: producerCounter(accountId, month, producerId), ...read },
            },
          ],
        }),
      ),
    );
    const [total, share] = out.Responses ?? [];
    return { used: countOf(total?.Item), byProducer: countOf(share?.Item) };
  }

  /**
   * Every key's all-time total and last use in an account. Bounded by the account's keys and the
   * late window, not by its history: days no event can be added to any more (older than the late
   * window) are folded into one `TOTAL#<key>` item per key (counter-keys.ts keyTotal) the first
   * time they are read, so a read is those items plus the day counters of the last few days.
   * Metering writes no all-time item (no write per event): the fold is done here, at most once a
   * day per account, with conditional writes that make a concurrent or repeated fold harmless.
   */
  async keyTotals(accountId: string, now: Date = new Date()): Promise<Map<string, KeyTotals>> {
    const folded = await this.#foldedTotals(accountId);
    // Counters past the fold: every key's own `through`, or the account's for keys without one.
    const from = folded.through === undefined ? undefined : nextDay(folded.through);
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression:
        from === undefined ? 'pk = :pk AND begins_with(sk, :from)' : 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': accountPartition(accountId),
        ...(from === undefined ? { ':from': COUNTER_PREFIX } : dayBounds(dayRange(from, LAST_DAY))),
      },
      ProjectionExpression: 'sk, requests, lastUsedAt',
      ConsistentRead: true,
    });
    const totals = new Map<string, KeyTotals>();
    for (const [keyId, entry] of folded.keys) {
      totals.set(keyId, {
        count: entry.count,
        ...(entry.lastUsedAt ? { lastUsedAt: entry.lastUsedAt } : {}),
      });
    }
    const closed = closedThrough(now, this.#lateMs);
    const fold = new Map<string, KeyTotals & { through: string }>();
    for (const item of items) {
      const { day, keyId } = parseCounterSortKey(item.sk as string);
      // A key's item may be ahead of the account's mark (a fold that stopped half way), never
      // behind with usage in between: each fold writes every key with usage in the days it folds.
      const own = folded.keys.get(keyId)?.through;
      const keyThrough =
        own !== undefined && (folded.through === undefined || own > folded.through) ? own : folded.through;
      if (keyThrough !== undefined && day <= keyThrough) continue;
      const requests = (item.requests as number | undefined) ?? 0;
      const last = typeof item.lastUsedAt === 'string' ? item.lastUsedAt : undefined;
      addTo(totals, keyId, requests, last);
      if (day <= closed) {
        const before = folded.keys.get(keyId);
        const base = fold.get(keyId) ?? {
          count: before?.count ?? 0,
          ...(before?.lastUsedAt ? { lastUsedAt: before.lastUsedAt } : {}),
          through: closed,
        };
        base.count += requests;
        if (last !== undefined && (base.lastUsedAt === undefined || last > base.lastUsedAt))
          base.lastUsedAt = last;
        fold.set(keyId, base);
      }
    }
    if (folded.through === undefined || folded.through < closed)
      await this.#fold(accountId, folded, fold, closed);
    return totals;
  }

  async #foldedTotals(accountId: string): Promise<FoldedTotals> {
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': accountPartition(accountId), ':prefix': KEY_TOTALS_PREFIX },
      ConsistentRead: true,
    });
    const folded: FoldedTotals = { keys: new Map() };
    for (const item of items) {
      const keyId = parseKeyTotalSortKey(item.sk as string);
      if (keyId === undefined) folded.through = item.through as string;
      else {
        folded.keys.set(keyId, {
          count: (item.count as number | undefined) ?? 0,
          through: item.through as string,
          ...(typeof item.lastUsedAt === 'string' ? { lastUsedAt: item.lastUsedAt } : {}),
        });
      }
    }
    return folded;
  }

  /**
   * Folds the closed days read into each key's total item, then moves the account's mark. Each key
   * item is written only if it is still as read (its `through`), so two folds at once, or a fold
   * that stopped half way, can neither add a day twice nor lose one: a key whose item is ahead of
   * the account's mark is read from its own `through` on.
   */
  async #fold(
    accountId: string,
    folded: FoldedTotals,
    fold: ReadonlyMap<string, KeyTotals & { through: string }>,
    closed: string,
  ): Promise<void> {
    const conditional = async (send: () => Promise<unknown>) => {
      try {
        await callDynamo(send);
      } catch (error) {
        // Another fold got there first, or DynamoDB is busy: the next read folds again. The
        // answer already holds the exact totals either way.
        if (isConditionFailure(error) || error instanceof DependencyError) return false;
        throw error;
      }
      return true;
    };
    let complete = true;
    await eachWithConcurrency([...fold], 4, async ([keyId, total]) => {
      const before = folded.keys.get(keyId)?.through;
      const done = await conditional(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: keyTotal(accountId, keyId),
            UpdateExpression: `SET #c = :c, through = :t${total.lastUsedAt ? ', lastUsedAt = :l' : ''}`,
            ConditionExpression: before === undefined ? 'attribute_not_exists(pk)' : 'through = :before',
            ExpressionAttributeNames: { '#c': 'count' },
            ExpressionAttributeValues: {
              ':c': total.count,
              ':t': total.through,
              ...(total.lastUsedAt ? { ':l': total.lastUsedAt } : {}),
              ...(before === undefined ? {} : { ':before': before }),
            },
          }),
        ),
      );
      if (!done) complete = false;
    });
    if (!complete) return;
    await conditional(() =>
      this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: keyTotal(accountId),
          UpdateExpression: 'SET through = :t',
          ConditionExpression:
            folded.through === undefined ? 'attribute_not_exists(pk)' : 'through = :before',
          ExpressionAttributeValues: {
            ':t': closed,
            ...(folded.through === undefined ? {} : { ':before': folded.through }),
          },
        }),
      ),
    );
  }
}

interface FoldedTotals {
  /** The account's mark: every day up to it is folded (absent: nothing folded yet). */
  through?: string;
  keys: Map<string, { count: number; lastUsedAt?: string; through: string }>;
}

const DAY_MS = 86_400_000;
const LAST_DAY = '9999-12-31';

/** The last UTC day no event can be added to any more: its end is past the late window. */
export function closedThrough(now: Date, lateMs: number): string {
  return utcDay(now.getTime() - lateMs - DAY_MS);
}

const nextDay = (day: string) => utcDay(Date.parse(`${day}T00:00:00Z`) + DAY_MS);

const dayBounds = (range: { from: string; to: string }) => ({ ':from': range.from, ':to': range.to });

function addTo(totals: Map<string, KeyTotals>, keyId: string, count: number, last: string | undefined) {
  const total = totals.get(keyId) ?? { count: 0 };
  total.count += count;
  if (last !== undefined && (total.lastUsedAt === undefined || last > total.lastUsedAt))
    total.lastUsedAt = last;
  totals.set(keyId, total);
}
