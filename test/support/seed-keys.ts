import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';

/**
 * Writes a key record for every (account, key) the given usage-event bodies name, where none is:
 * what a producer guarantees (no event without its key), for tests whose events are synthetic, so
 * metering's provenance check passes them. Conditional, so a real key a test made is never
 * overwritten; each pair is written at most once per seeder.
 */
export function keySeeder(client: DynamoDBDocumentClient, keysTable: string) {
  const seeded = new Set<string>();
  return async (bodies: readonly string[]): Promise<void> => {
    const fresh = new Map<string, { accountId: string; keyId: string }>();
    for (const body of bodies) {
      try {
        const { keyId, accountId } = JSON.parse(body) as { keyId?: unknown; accountId?: unknown };
        if (typeof keyId !== 'string' || typeof accountId !== 'string') continue;
        const id = `${accountId}\u0000${keyId}`;
        if (!seeded.has(id)) fresh.set(id, { accountId, keyId });
      } catch {
        // Not JSON: the consumer dead-letters it.
      }
    }
    const claims = [...fresh.entries()];
    for (let i = 0; i < claims.length; i += 16) {
      await Promise.all(
        claims.slice(i, i + 16).map(async ([id, claim]) => {
          try {
            await client.send(
              new PutCommand({
                TableName: keysTable,
                Item: { ...claim, name: 'test', status: 'active', createdAt: new Date().toISOString() },
                ConditionExpression: 'attribute_not_exists(keyId)',
              }),
            );
          } catch (error) {
            if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
          }
          seeded.add(id);
        }),
      );
    }
  };
}
