/**
 * COMPARISON ONLY. The article's user table: `Id` hash key, the plaintext `Key` attribute with the
 * `KeyLookup` GSI projecting ALL attributes, and `Count`. Users are seeded as the article's
 * PostConfirmation trigger writes them: `{ Id, Key: os.urandom(64).hex(), Count: 0 }`.
 *
 * Billing is on-demand here (the article provisions 1 RCU / 1 WCU, which would throttle a real
 * table at about one request a second; DynamoDB Local ignores capacity either way), so the cost
 * model prices both designs the same way.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BASELINE_INDEX } from './handler';

export interface BaselineUser {
  readonly id: string;
  readonly key: string;
}

export async function createBaselineTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [
        { AttributeName: 'Id', AttributeType: 'S' },
        { AttributeName: 'Key', AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: 'Id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      GlobalSecondaryIndexes: [
        {
          IndexName: BASELINE_INDEX,
          KeySchema: [{ AttributeName: 'Key', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
  for (let attempt = 0; attempt < 100; attempt++) {
    const table = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (table.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${tableName} did not become ACTIVE`);
}

/** `count` users as the article's sign-up writes them. */
export async function seedBaselineUsers(
  client: DynamoDBClient,
  tableName: string,
  count: number,
): Promise<BaselineUser[]> {
  const doc = DynamoDBDocumentClient.from(client);
  const users = Array.from({ length: count }, (_, i) => ({
    id: `user-${String(i).padStart(4, '0')}`,
    key: randomBytes(64).toString('hex'),
  }));
  for (let i = 0; i < users.length; i += 25) {
    let requests: Record<string, unknown>[] | undefined = users
      .slice(i, i + 25)
      .map((u) => ({ PutRequest: { Item: { Id: u.id, Key: u.key, Count: 0 } } }));
    while (requests && requests.length > 0) {
      const out = await doc.send(new BatchWriteCommand({ RequestItems: { [tableName]: requests as never } }));
      requests = out.UnprocessedItems?.[tableName] as Record<string, unknown>[] | undefined;
    }
  }
  return users;
}

/** Sum of `Count` over the table: every request the baseline answered 200 to, if it is exact. */
export async function totalBaselineCount(client: DynamoDBClient, tableName: string): Promise<number> {
  let total = 0;
  let startKey: Record<string, never> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ProjectionExpression: '#c',
        ExpressionAttributeNames: { '#c': 'Count' },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) total += Number(item.Count?.N ?? 0);
    startKey = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (startKey);
  return total;
}
