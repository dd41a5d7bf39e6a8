import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { callDynamo } from '../platform/dynamodb';
import type { KeyClaim } from './key-claims';
import type { KeyRecord } from './records';

/** BatchWriteItem takes at most 25 items per request. */
const BATCH_WRITE_MAX = 25;

/**
 * Active key records for (account, key) pairs that no owner created through the user API: the
 * keys that events from a producer other than key-api name (the benchmark's paced phase publishes
 * straight to the transport), so metering's provenance check (key-claims.ts) finds each key in its
 * account, as a real producer guarantees. Only the key records: no account record is written or
 * checked, and an existing record of the same id is replaced.
 */
export async function seedActiveKeys(
  client: DynamoDBDocumentClient,
  keysTable: string,
  claims: readonly KeyClaim[],
  options: { readonly name: string; readonly now: Date },
): Promise<void> {
  const createdAt = options.now.toISOString();
  for (let i = 0; i < claims.length; i += BATCH_WRITE_MAX) {
    let items: Record<string, unknown>[] = claims
      .slice(i, i + BATCH_WRITE_MAX)
      .map(({ accountId, keyId }) => {
        const record: KeyRecord = { accountId, keyId, name: options.name, status: 'active', createdAt };
        return { PutRequest: { Item: record } };
      });
    while (items.length > 0) {
      const answer = await callDynamo(() =>
        client.send(new BatchWriteCommand({ RequestItems: { [keysTable]: items } })),
      );
      // Throttled items come back unprocessed: sent again until none is left.
      items = (answer.UnprocessedItems?.[keysTable] ?? []) as Record<string, unknown>[];
    }
  }
}
