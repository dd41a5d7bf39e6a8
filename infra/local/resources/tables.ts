import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type Projection,
  type TableDescription,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  type IndexDefinition,
  type KeyAttribute,
  type TableDefinition,
  tableName,
  tables,
} from '../../../contracts/resources';
import { LocalStackError } from '../errors';
import { poll } from '../poll';

/**
 * The tables of contracts/resources.ts on DynamoDB Local, whose data persists across restarts:
 * each is looked up first, created only when missing, and brought in line when it can be.
 */

export function createTableInput(stage: string, table: TableDefinition): CreateTableCommandInput {
  const indexes = table.globalSecondaryIndexes.map(globalSecondaryIndex);
  return {
    TableName: tableName(stage, table),
    AttributeDefinitions: attributeDefinitions([
      table.partitionKey,
      table.sortKey,
      ...table.globalSecondaryIndexes.flatMap((index) => [index.partitionKey, index.sortKey]),
    ]),
    KeySchema: keySchema(table.partitionKey, table.sortKey),
    BillingMode: 'PAY_PER_REQUEST',
    ...(indexes.length > 0 ? { GlobalSecondaryIndexes: indexes } : {}),
  };
}

function attributeDefinitions(keys: ReadonlyArray<KeyAttribute | undefined>): AttributeDefinition[] {
  const byName = new Map<string, AttributeDefinition>();
  for (const key of keys) {
    if (key) byName.set(key.name, { AttributeName: key.name, AttributeType: key.type });
  }
  return [...byName.values()];
}

function keySchema(partitionKey: KeyAttribute, sortKey?: KeyAttribute): KeySchemaElement[] {
  return [
    { AttributeName: partitionKey.name, KeyType: 'HASH' },
    ...(sortKey ? [{ AttributeName: sortKey.name, KeyType: 'RANGE' as const }] : []),
  ];
}

function projection(index: IndexDefinition): Projection {
  return index.nonKeyAttributes.length > 0
    ? { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.nonKeyAttributes] }
    : { ProjectionType: 'KEYS_ONLY' };
}

function globalSecondaryIndex(index: IndexDefinition): GlobalSecondaryIndex {
  return {
    IndexName: index.indexName,
    KeySchema: keySchema(index.partitionKey, index.sortKey),
    Projection: projection(index),
  };
}

/** Every table of contracts/resources.ts, by id: its name. */
export async function ensureTables(
  client: DynamoDBClient,
  stage: string,
  dataDir: string,
): Promise<Record<TableDefinition['id'], string>> {
  const names = {} as Record<TableDefinition['id'], string>;
  await Promise.all(
    tables.map(async (table) => {
      names[table.id] = await ensureTable(client, stage, table, dataDir);
    }),
  );
  return names;
}

async function ensureTable(
  client: DynamoDBClient,
  stage: string,
  table: TableDefinition,
  dataDir: string,
): Promise<string> {
  const name = tableName(stage, table);
  let existing = await describeTable(client, name);
  if (!existing) {
    try {
      await client.send(new CreateTableCommand(createTableInput(stage, table)));
    } catch (error) {
      // Lost a race with another bootstrap of the same data: the table is there, which is the goal.
      if ((error as Error).name !== 'ResourceInUseException') throw error;
    }
    existing = await waitForTable(client, name);
  } else {
    existing = await reconcileTable(client, stage, table, existing, dataDir);
  }
  if (table.timeToLiveAttribute) await ensureTimeToLive(client, name, table.timeToLiveAttribute);
  return name;
}

/**
 * Local data outlives changes to resources.ts. A new index is added in place; a changed key or
 * index cannot be, so the message says how to start over instead of running on a stale schema.
 */
async function reconcileTable(
  client: DynamoDBClient,
  stage: string,
  table: TableDefinition,
  existing: TableDescription,
  dataDir: string,
): Promise<TableDescription> {
  const name = tableName(stage, table);
  const reset = `stop the stack and delete ${dataDir}/dynamodb to recreate the tables (local data is lost)`;
  if (!sameKeys(existing.KeySchema, keySchema(table.partitionKey, table.sortKey))) {
    throw new LocalStackError(
      `table ${name} has a different key schema than contracts/resources.ts: ${reset}`,
    );
  }
  for (const index of table.globalSecondaryIndexes) {
    const current = existing.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === index.indexName);
    if (!current) {
      await client.send(
        new UpdateTableCommand({
          TableName: name,
          AttributeDefinitions: attributeDefinitions([index.partitionKey, index.sortKey]),
          GlobalSecondaryIndexUpdates: [{ Create: globalSecondaryIndex(index) }],
        }),
      );
      continue;
    }
    const wanted = projection(index);
    const sameProjection =
      current.Projection?.ProjectionType === wanted.ProjectionType &&
      sorted(current.Projection?.NonKeyAttributes).join() === sorted(wanted.NonKeyAttributes).join();
    if (!sameKeys(current.KeySchema, keySchema(index.partitionKey, index.sortKey)) || !sameProjection) {
      throw new LocalStackError(
        `index ${index.indexName} of table ${name} differs from contracts/resources.ts: ${reset}`,
      );
    }
  }
  return waitForTable(client, name);
}

function sameKeys(a: KeySchemaElement[] | undefined, b: KeySchemaElement[]): boolean {
  const text = (keys: KeySchemaElement[] | undefined) =>
    (keys ?? []).map((key) => `${key.AttributeName}:${key.KeyType}`).join();
  return text(a) === text(b);
}

function sorted(values: readonly string[] | undefined): string[] {
  return [...(values ?? [])].sort();
}

async function describeTable(client: DynamoDBClient, name: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

async function waitForTable(client: DynamoDBClient, name: string): Promise<TableDescription> {
  return poll(`table ${name} to become active`, async () => {
    const table = await describeTable(client, name);
    const active =
      table?.TableStatus === 'ACTIVE' &&
      (table.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === 'ACTIVE');
    return active ? table : undefined;
  });
}

async function ensureTimeToLive(client: DynamoDBClient, name: string, attribute: string): Promise<void> {
  const current = (await client.send(new DescribeTimeToLiveCommand({ TableName: name })))
    .TimeToLiveDescription;
  if (current?.TimeToLiveStatus === 'ENABLED' && current.AttributeName === attribute) return;
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: name,
      TimeToLiveSpecification: { AttributeName: attribute, Enabled: true },
    }),
  );
}
