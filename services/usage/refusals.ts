import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { utcDay } from '../../contracts/usage-event';
import { eachWithConcurrency } from '../platform/concurrency';
import { callDynamo, queryAll } from '../platform/dynamodb';
import { accountPartition, type CounterKey } from './counter-keys';

/**
 * The gate's refusals of a presented, valid key by its plan, per key, UTC hour and reason, in the
 * usage table (its owner is this folder): what an account owner sees next to the usage it was billed.
 *
 * One item per (key, UTC day) in the account's partition:
 *  - `ACCOUNT#<accountId>` / `REFUSED#<yyyy-mm-dd>#KEY#<keyId>`, attributes `<reason>#<HH>` (the
 *    UTC hour, `rate_limited#07`) ADDed, and `expiresAt` (REFUSAL_RETENTION_DAYS after the day).
 *
 * The sort key sorts between `PERIOD#…` and `TOTAL…` and starts with neither, nor with `DAY#`: every
 * Query of the account partition (the day counters' `DAY#` range, the `TOTAL` fold, the period items'
 * Gets) passes it by, so a refusal can never be read as billed usage. Refusals are not events on the
 * usage transport and never touch a counter: the gate gathers them per container (a summary every
 * few seconds, services/gate/refusal-tally.ts) and writes them here itself.
 */

/** Why the plan refused a request (services/gate/limits.ts LimitDecision reasons). */
export const REFUSAL_REASONS = ['rate_limited', 'quota_exceeded', 'account_suspended'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/**
 * How long a day's refusals are kept after that day: past the longest window the usage API answers
 * (366 days) with a month to spare. Day counters are kept for good (billing needs them); refusals
 * are a diagnostic, so the table's TTL removes them.
 */
export const REFUSAL_RETENTION_DAYS = 400;

const REFUSED = 'REFUSED#';
const KEY = '#KEY#';
/** Sorts after `#`: `REFUSED#<day>$` is past every `REFUSED#<day>#KEY#…` of that day. */
const END_OF_DAY = '$';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Updates in flight at once per flush: a flush holds few items, a burst of many keys must not storm. */
const WRITE_CONCURRENCY = 4;

/** The item holding one key's refusals on one UTC day. */
export const refusalItemKey = (accountId: string, keyId: string, day: string): CounterKey => ({
  pk: accountPartition(accountId),
  sk: `${REFUSED}${day}${KEY}${keyId}`,
});

/** The attribute holding one reason's refusals in one UTC hour (0–23) of the item's day. */
export const refusalAttribute = (reason: RefusalReason, hour: number): string =>
  `${reason}#${String(hour).padStart(2, '0')}`;

const ATTRIBUTE_PATTERN = new RegExp(`^(${REFUSAL_REASONS.join('|')})#([01]\\d|2[0-3])$`);

/** The reason and UTC hour of a refusal attribute, or undefined for any other attribute. */
export function parseRefusalAttribute(name: string): { reason: RefusalReason; hour: number } | undefined {
  const match = ATTRIBUTE_PATTERN.exec(name);
  return match ? { reason: match[1] as RefusalReason, hour: Number(match[2]) } : undefined;
}

/** Refusals of one key in one UTC hour for one reason. */
export interface RefusalCount {
  readonly accountId: string;
  readonly keyId: string;
  /** The UTC hour's start, epoch ms. */
  readonly hourStart: number;
  readonly reason: RefusalReason;
  readonly count: number;
}

/** The start (epoch ms) of the UTC hour `epochMs` is in. */
export const hourStartOf = (epochMs: number): number => Math.floor(epochMs / HOUR_MS) * HOUR_MS;

/**
 * Writes summaries of refusals: one UpdateItem per (key, UTC day) with all of its hours' and
 * reasons' ADDs. An ADD is not idempotent: a write whose answer was lost (a timeout after DynamoDB
 * applied it) and is sent again counts that summary twice. Refusals are not billed, so that is
 * accepted rather than paying for a dedupe mark per flush.
 */
export class RefusalRecorder {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #retentionMs: number;

  constructor(options: { client: DynamoDBDocumentClient; table: string; retentionDays?: number }) {
    this.#db = options.client;
    this.#table = options.table;
    this.#retentionMs = (options.retentionDays ?? REFUSAL_RETENTION_DAYS) * DAY_MS;
  }

  /**
   * Adds the counts to their items. Never throws.
   * @returns the counts that were not written (their item's update failed), to be sent again later
   */
  async record(counts: readonly RefusalCount[]): Promise<{ unwritten: RefusalCount[]; errors: unknown[] }> {
    const items = new Map<string, RefusalCount[]>();
    for (const count of counts) {
      if (count.count <= 0) continue;
      const id = `${count.accountId}\n${count.keyId}\n${utcDay(count.hourStart)}`;
      const group = items.get(id) ?? [];
      group.push(count);
      items.set(id, group);
    }
    const unwritten: RefusalCount[] = [];
    const errors: unknown[] = [];
    await eachWithConcurrency([...items.values()], WRITE_CONCURRENCY, async (group) => {
      try {
        await callDynamo(() => this.#db.send(this.#update(group)));
      } catch (error) {
        unwritten.push(...group);
        errors.push(error);
      }
    });
    return { unwritten, errors };
  }

  /** One item's update: every (reason, hour) of the group ADDed, the expiry set. */
  #update(group: readonly RefusalCount[]): UpdateCommand {
    const first = group[0] as RefusalCount;
    const day = utcDay(first.hourStart);
    const sums = new Map<string, number>();
    for (const count of group) {
      const name = refusalAttribute(count.reason, new Date(count.hourStart).getUTCHours());
      sums.set(name, (sums.get(name) ?? 0) + count.count);
    }
    const names: Record<string, string> = { '#exp': 'expiresAt' };
    const values: Record<string, number> = {
      ':exp': Math.ceil((Date.parse(`${day}T00:00:00Z`) + DAY_MS + this.#retentionMs) / 1000),
    };
    const adds: string[] = [];
    [...sums].forEach(([name, sum], i) => {
      names[`#a${i}`] = name;
      values[`:a${i}`] = sum;
      adds.push(`#a${i} :a${i}`);
    });
    return new UpdateCommand({
      TableName: this.#table,
      Key: refusalItemKey(first.accountId, first.keyId, day),
      UpdateExpression: `ADD ${adds.join(', ')} SET #exp = :exp`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }
}

/** Reads the refusals back, for the usage API (`include=refusals`). */
export class RefusalReader {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; table: string }) {
    this.#db = options.client;
    this.#table = options.table;
  }

  /**
   * The refusals of an account (of one key, when the scope names it) in every UTC hour that
   * overlaps [fromMs, toMs): one strongly consistent Query of the partition's `REFUSED#` items of
   * those days. A window edge inside an hour (a :30/:45 zone's midnight) keeps that hour: the caller
   * places it (by its middle, as the counters' hours are). Sorted by hour, then key, then reason;
   * only non-zero counts.
   */
  async refusals(
    scope: { accountId: string; keyId?: string },
    fromMs: number,
    toMs: number,
  ): Promise<RefusalCount[]> {
    if (!(toMs > fromMs)) return [];
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': accountPartition(scope.accountId),
        ':from': `${REFUSED}${utcDay(fromMs)}`,
        ':to': `${REFUSED}${utcDay(toMs - 1)}${END_OF_DAY}`,
      },
      ConsistentRead: true,
    });
    const counts: RefusalCount[] = [];
    for (const item of items) {
      const { day, keyId } = parseRefusalSortKey(String(item.sk));
      if (scope.keyId !== undefined && keyId !== scope.keyId) continue;
      const dayStart = Date.parse(`${day}T00:00:00Z`);
      for (const [name, value] of Object.entries(item)) {
        const parsed = parseRefusalAttribute(name);
        if (!parsed || typeof value !== 'number' || value <= 0) continue;
        const hourStart = dayStart + parsed.hour * HOUR_MS;
        if (hourStart + HOUR_MS <= fromMs || hourStart >= toMs) continue;
        counts.push({ accountId: scope.accountId, keyId, hourStart, reason: parsed.reason, count: value });
      }
    }
    return counts.sort(
      (a, b) =>
        a.hourStart - b.hourStart ||
        (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0) ||
        REFUSAL_REASONS.indexOf(a.reason) - REFUSAL_REASONS.indexOf(b.reason),
    );
  }
}

/** The day and key of a refusal item's sort key. */
export function parseRefusalSortKey(sortKey: string): { day: string; keyId: string } {
  const at = sortKey.indexOf(KEY);
  if (!sortKey.startsWith(REFUSED) || at < 0) throw new Error(`not a refusal item: ${sortKey}`);
  return { day: sortKey.slice(REFUSED.length, at), keyId: sortKey.slice(at + KEY.length) };
}
