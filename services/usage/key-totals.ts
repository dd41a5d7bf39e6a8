import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_ACCEPTANCE_WINDOW } from '../../contracts/config';
import { utcDay } from '../../contracts/usage-event';
import { eachWithConcurrency } from '../platform/concurrency';
import { callDynamo, isConditionFailure, queryAll } from '../platform/dynamodb';
import { DependencyError } from '../platform/errors';
import {
  accountPartition,
  COUNTER_PREFIX,
  dayRange,
  KEY_TOTALS_PREFIX,
  keyTotal,
  parseCounterSortKey,
  parseKeyTotalSortKey,
} from './counter-keys';
import type { PendingUsage } from './pending-usage';

export interface KeyTotals {
  count: number;
  lastUsedAt?: string;
}

/**
 * Keys' all-time totals, read in time bounded by an account's keys and the late window rather
 * than by its history (UsageReader.keyTotals).
 */
export class KeyTotalsFold {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #lateMs: number;
  readonly #pending: PendingUsage | undefined;

  /**
   * @param options.lateMs the acceptance window's late bound: days older are closed
   * @param options.pending what the SQS ledger committed and has not flushed, added to the counters
   */
  constructor(options: {
    client: DynamoDBDocumentClient;
    table: string;
    lateMs?: number;
    pending?: PendingUsage;
  }) {
    this.#db = options.client;
    this.#table = options.table;
    this.#lateMs = options.lateMs ?? DEFAULT_ACCEPTANCE_WINDOW.lateMs;
    this.#pending = options.pending;
  }

  /**
   * Every key's all-time total and last use in an account. Bounded by the account's keys and the
   * late window, not by its history: days no event can be added to any more (older than the late
   * window) are folded into one `TOTAL#<key>` item per key (counter-keys.ts keyTotal) the first
   * time they are read, so a read is those items plus the day counters of the last few days.
   * Metering writes no all-time item (no write per event): the fold is done here, at most once a
   * day per account, with conditional writes that make a concurrent or repeated fold harmless.
   */
  async read(accountId: string, now: Date): Promise<Map<string, KeyTotals>> {
    // The pending journals before the counters they are added to (pending-usage.ts).
    const [folded, pending] = await Promise.all([
      this.#foldedTotals(accountId),
      this.#pending?.read(accountId),
    ]);
    // Counters past the fold: every key's own `through`, or the account's for keys without one.
    const from = folded.through === undefined ? undefined : nextDay(folded.through);
    const range = from === undefined ? undefined : dayRange(from, LAST_DAY);
    const read = projected(['sk', 'requests', 'lastUsedAt', ...(this.#pending?.watermarks ?? [])]);
    const counters = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression:
        range === undefined ? 'pk = :pk AND begins_with(sk, :from)' : 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': accountPartition(accountId),
        ...(range === undefined ? { ':from': COUNTER_PREFIX } : dayBounds(range)),
      },
      ...read,
      ConsistentRead: true,
    });
    const items = pending
      ? pending.overlay(counters, (sk) =>
          range === undefined ? sk.startsWith(COUNTER_PREFIX) : sk >= range.from && sk <= range.to,
        )
      : counters;
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

/** A projection of these attributes, each by a placeholder (watermarks hold `#`). */
export function projected(names: readonly string[]): {
  ProjectionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
} {
  const placeholders = Object.fromEntries(names.map((name, i) => [`#p${i}`, name]));
  return {
    ProjectionExpression: Object.keys(placeholders).join(', '),
    ExpressionAttributeNames: placeholders,
  };
}

const dayBounds = (range: { from: string; to: string }) => ({ ':from': range.from, ':to': range.to });

function addTo(totals: Map<string, KeyTotals>, keyId: string, count: number, last: string | undefined) {
  const total = totals.get(keyId) ?? { count: 0 };
  total.count += count;
  if (last !== undefined && (total.lastUsedAt === undefined || last > total.lastUsedAt))
    total.lastUsedAt = last;
  totals.set(keyId, total);
}
