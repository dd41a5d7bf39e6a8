import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  GetCommand,
} from '@aws-sdk/lib-dynamodb';
import { callDynamo, queryAll } from '../shared/dynamodb';
import { DependencyError } from '../shared/errors';
import { accountPartition, counterKeys, dayOf, daySortKey, keyIdOf, keyPartition } from './counter-keys';

export interface DayCount {
  date: string;
  count: number;
}

export interface KeyTotals {
  count: number;
  lastUsedAt?: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The one way other services read what metering counted (key-api's usage figure, user-api's
 * series and totals), over metering's own key layout (counter-keys.ts).
 */
export class UsageReader {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; table: string }) {
    this.#db = options.client;
    this.#table = options.table;
  }

  /** A key's count for one day; eventually consistent is enough for key-api's informative figure. */
  async keyDayCount(keyId: string, day: string): Promise<number> {
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#table, Key: counterKeys.keyDay(keyId, day) })),
    );
    return (out.Item?.requests as number | undefined) ?? 0;
  }

  /** Daily counts in [from, to] for a key or an account; days without usage are absent. */
  async dailyCounts(
    scope: { keyId: string } | { accountId: string },
    from: string,
    to: string,
  ): Promise<DayCount[]> {
    const pk = 'keyId' in scope ? keyPartition(scope.keyId) : accountPartition(scope.accountId);
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': pk, ':from': daySortKey(from), ':to': daySortKey(to) },
      ProjectionExpression: 'sk, requests',
      ConsistentRead: true,
    });
    return items.map((item) => ({
      date: dayOf(item.sk as string),
      count: (item.requests as number | undefined) ?? 0,
    }));
  }

  /** All-time totals for several keys (BatchGetItem, 100 keys a request). */
  async keyTotals(keyIds: readonly string[]): Promise<Map<string, KeyTotals>> {
    const totals = new Map<string, KeyTotals>();
    for (let i = 0; i < keyIds.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = keyIds.slice(i, i + 100).map(counterKeys.keyTotal);
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
          totals.set(keyIdOf(item.pk as string), {
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
