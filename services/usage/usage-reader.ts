import { type DynamoDBDocumentClient, GetCommand, TransactGetCommand } from '@aws-sdk/lib-dynamodb';
import type { QuotaPeriod } from '../../contracts/plans';
import { ANY_METHOD, ANY_ROUTE, utcDay } from '../../contracts/usage-event';
import { callDynamo, queryAll } from '../platform/dynamodb';
import {
  accountPartition,
  type CounterKey,
  dayAttribute,
  dayRange,
  keyDayCounter,
  monthOf,
  parseCounterSortKey,
  parseHourAttribute,
  parseRouteAttribute,
  periodCounter,
  producerCounter,
} from './counter-keys';
import { type KeyTotals, KeyTotalsFold, projected } from './key-totals';
import type { PendingUsage } from './pending-usage';

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

/** One key's counter for one UTC day, split by UTC hour: what hour, time-zone and per-key answers are made of. */
export interface KeyDayHours {
  keyId: string;
  /** The UTC day (`yyyy-mm-dd`). */
  day: string;
  /** The day's requests, as `requests` holds them. */
  requests: number;
  /** Requests per UTC hour, 0–23. */
  hours: number[];
  /** Requests the item holds without an hour (counted before hours were recorded): `requests` − Σ hours. */
  unhoured: number;
}

/** An account's requests in a quota period, and the share of them one gate container published. */
export interface PeriodUsage {
  used: number;
  /** What the counters hold of the named producer's events in the period (0 when none was named). */
  byProducer: number;
}

export type { KeyTotals } from './key-totals';

/**
 * The one way other services read what metering counted (key-api's usage figure, user-api's
 * series and totals), over metering's own key layout (counter-keys.ts). Everything an owner sees
 * is read strongly consistent. Given `pending`, every read adds what the SQS ledger committed and
 * has not flushed yet (pending-usage.ts), so usage shows once it is counted, not once it is flushed.
 */
export class UsageReader {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #pending: PendingUsage | undefined;

  readonly #totals: KeyTotalsFold;

  /**
   * @param options.lateMs the acceptance window's late bound: days older are closed (keyTotals)
   * @param options.pending the SQS ledger's committed, unflushed journals, added to every read.
   *   user-api reads with it. The gate, key-api's informative figure and metering read without:
   *   the gate counts what it admitted itself until the counters hold it (services/gate/limits.ts),
   *   and a strongly consistent head read per quota check or per key a second, on every container,
   *   would load the one item every commit writes.
   */
  constructor(options: {
    client: DynamoDBDocumentClient;
    table: string;
    lateMs?: number;
    pending?: PendingUsage;
  }) {
    this.#db = options.client;
    this.#table = options.table;
    this.#pending = options.pending;
    this.#totals = new KeyTotalsFold(options);
  }

  /** The attributes to project, with the pending journals' watermarks when there are any. */
  #projection(names: readonly string[]) {
    return projected([...names, ...(this.#pending?.watermarks ?? [])]);
  }

  /** A key's count for one day; eventually consistent is enough for key-api's informative figure. */
  async keyDayCount(accountId: string, keyId: string, day: string): Promise<number> {
    const key = keyDayCounter(accountId, keyId, day);
    const pending = await this.#pending?.read(accountId);
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#table, Key: key, ...this.#projection(['requests']) })),
    );
    const item = pending ? pending.overlayOne(key, out.Item) : out.Item;
    return (item?.requests as number | undefined) ?? 0;
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
    for (const { item, day } of await this.#dayItems(scope, from, to, ['sk', 'requests'])) {
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
   * Every key-day counter of the UTC days `from` to `to`, split by UTC hour, for an account or one
   * of its keys; only counters with usage are present. The same one Query as dailyCounts, projected
   * to the counts (route attributes are not read).
   */
  async hourlyCounts(
    scope: { accountId: string; keyId?: string },
    from: string,
    to: string,
  ): Promise<KeyDayHours[]> {
    const items = await this.#dayItems(scope, from, to);
    return items.map(({ item, day }) => {
      const hours = new Array<number>(24).fill(0);
      let houred = 0;
      for (const [name, value] of Object.entries(item)) {
        const hour = parseHourAttribute(name);
        if (hour === undefined || typeof value !== 'number') continue;
        hours[hour] = value;
        houred += value;
      }
      const requests = (item.requests as number | undefined) ?? 0;
      const { keyId } = parseCounterSortKey(item.sk as string);
      return { keyId, day, requests, hours, unhoured: Math.max(0, requests - houred) };
    });
  }

  /**
   * The counter items of the days `from` to `to` in the account's partition (one strongly
   * consistent Query), with their day, only the scope's key's when it names one.
   */
  async #dayItems(
    scope: { accountId: string; keyId?: string },
    from: string,
    to: string,
    projection?: readonly string[],
  ): Promise<{ item: Record<string, unknown>; day: string }[]> {
    const range = dayRange(from, to);
    // The pending journals before the counters they are added to (pending-usage.ts).
    const pending = await this.#pending?.read(scope.accountId);
    const counters = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': accountPartition(scope.accountId),
        ':from': range.from,
        ':to': range.to,
      },
      ...(projection ? this.#projection(projection) : {}),
      ConsistentRead: true,
    });
    const items = pending ? pending.overlay(counters, (sk) => sk >= range.from && sk <= range.to) : counters;
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
    const read = this.#projection([attribute]);
    const pending = await this.#pending?.read(accountId);
    const countOf = (key: CounterKey, item: Record<string, unknown> | undefined) =>
      ((pending ? pending.overlayOne(key, item) : item)?.[attribute] as number | undefined) ?? 0;
    const periodKey = periodCounter(accountId, month);
    if (producerId === undefined) {
      const out = await callDynamo(() =>
        this.#db.send(
          new GetCommand({ TableName: this.#table, Key: periodKey, ...read, ConsistentRead: true }),
        ),
      );
      return { used: countOf(periodKey, out.Item), byProducer: 0 };
    }
    const producerKey = producerCounter(accountId, month, producerId);
    const out = await callDynamo(() =>
      this.#db.send(
        new TransactGetCommand({
          TransactItems: [
            { Get: { TableName: this.#table, Key: periodKey, ...read } },
            { Get: { TableName: this.#table, Key: producerKey, ...read } },
          ],
        }),
      ),
    );
    const [total, share] = out.Responses ?? [];
    return { used: countOf(periodKey, total?.Item), byProducer: countOf(producerKey, share?.Item) };
  }

  /** Every key's all-time total and last use in an account (KeyTotalsFold.read). */
  keyTotals(accountId: string, now: Date = new Date()): Promise<Map<string, KeyTotals>> {
    return this.#totals.read(accountId, now);
  }
}
