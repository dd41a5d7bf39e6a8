import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdminAddUserToGroupCommand,
  AdminCreateUserCommand,
  AdminSetUserPasswordCommand,
  CognitoIdentityProviderClient,
  CreateGroupCommand,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  ListGroupsCommand,
  ListUserPoolClientsCommand,
  ListUserPoolsCommand,
  ListUsersCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type Projection,
  type TableDescription,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DecreaseStreamRetentionPeriodCommand,
  DescribeStreamSummaryCommand,
  IncreaseStreamRetentionPeriodCommand,
  KinesisClient,
} from '@aws-sdk/client-kinesis';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { ADMIN_GROUP } from '../../contracts/plans';
import { type UsageRedelivery, usageRedelivery } from '../../contracts/redelivery';
import {
  type IndexDefinition,
  type KeyAttribute,
  queueName,
  streamName,
  type TableDefinition,
  tableName,
  tables,
  usageQueue,
  usageStream,
  userPool,
  userPoolClientName,
  userPoolName,
} from '../../contracts/resources';
import { LocalStackError } from './errors';

/**
 * Turns contracts/resources.ts into resources on the emulators. Every step looks first and creates
 * only what is missing, because DynamoDB, Kinesis and Cognito data persist across restarts.
 */

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Function name the local PostConfirmation trigger is registered under. */
export const AUTH_TRIGGERS_FUNCTION = 'tollgate-auth-triggers';

const clientConfig = (endpoint: string) => ({
  endpoint,
  region: LOCAL_REGION,
  credentials: LOCAL_CREDENTIALS,
});

export function dynamoDbClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient(clientConfig(endpoint));
}
export function sqsClient(endpoint: string): SQSClient {
  return new SQSClient(clientConfig(endpoint));
}
export function kinesisClient(endpoint: string): KinesisClient {
  return new KinesisClient(clientConfig(endpoint));
}
export function cognitoClient(endpoint: string): CognitoIdentityProviderClient {
  return new CognitoIdentityProviderClient(clientConfig(endpoint));
}

export interface BootstrapEndpoints {
  readonly dynamodb: string;
  readonly sqs: string;
  readonly kinesis: string;
  readonly cognito: string;
}

export interface BootstrapResult {
  readonly tables: Readonly<Record<TableDefinition['id'], string>>;
  readonly usageQueueUrl: string;
  /** For event source records (`eventSourceARN`). */
  readonly usageQueueArn: string;
  readonly usageDlqUrl: string;
  readonly usageStreamName: string;
  readonly usageStreamArn: string;
  readonly userPoolId: string;
  readonly userPoolClientId: string;
  /** The local admin's sign-in (a confirmed user in the group `admins`), also in `<dataDir>/admin.json`. */
  readonly admin: LocalAdmin;
}

/** What `<dataDir>/admin.json` holds: the sign-in of the local admin. */
export interface LocalAdmin {
  readonly email: string;
  readonly password: string;
}

export const ADMIN_FILE = 'admin.json';
export const LOCAL_ADMIN_EMAIL = 'admin@tollgate.local';

export async function bootstrap(
  stage: string,
  endpoints: BootstrapEndpoints,
  dataDir: string,
  /** How long usage waits and is kept: the CDK stack's settings for the same late window. */
  redelivery: UsageRedelivery = usageRedelivery(),
): Promise<BootstrapResult> {
  const dynamodb = dynamoDbClient(endpoints.dynamodb);
  const sqs = sqsClient(endpoints.sqs);
  const kinesis = kinesisClient(endpoints.kinesis);
  const cognito = cognitoClient(endpoints.cognito);
  try {
    const [tableNames, queues, stream, pool] = await Promise.all([
      ensureTables(dynamodb, stage, dataDir),
      ensureUsageQueues(sqs, stage, redelivery),
      ensureUsageStream(kinesis, stage, redelivery.stream.retentionHours),
      ensureUserPool(cognito, stage).then(async (pool) => ({
        ...pool,
        admin: await ensureAdmin(cognito, pool.userPoolId, dataDir),
      })),
    ]);
    return { tables: tableNames, ...queues, ...stream, ...pool };
  } finally {
    for (const client of [dynamodb, sqs, kinesis, cognito]) client.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// DynamoDB

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

async function ensureTables(
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

// ---------------------------------------------------------------------------------------------
// SQS (in memory: the queues are created on every start)

async function ensureUsageQueues(client: SQSClient, stage: string, redelivery: UsageRedelivery) {
  const usageDlqUrl = await ensureQueue(client, queueName(stage, usageQueue, true), {
    MessageRetentionPeriod: String(redelivery.deadLetter.retentionSeconds),
  });
  const deadLetterTargetArn = await queueArn(client, usageDlqUrl);
  const { queue } = redelivery;
  const usageQueueUrl = await ensureQueue(client, queueName(stage, usageQueue), {
    VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(queue.retentionSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn, maxReceiveCount: queue.maxReceiveCount }),
  });
  return { usageQueueUrl, usageQueueArn: await queueArn(client, usageQueueUrl), usageDlqUrl };
}

async function queueArn(client: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  if (!Attributes?.QueueArn) throw new Error(`SQS returned no QueueArn for ${queueUrl}`);
  return Attributes.QueueArn;
}

async function ensureQueue(
  client: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<string> {
  try {
    const created = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!created.QueueUrl) throw new Error(`SQS returned no QueueUrl for ${name}`);
    return created.QueueUrl;
  } catch (error) {
    // CreateQueue is idempotent only with identical attributes: bring an existing queue in line.
    if (!['QueueAlreadyExists', 'QueueNameExists'].includes((error as Error).name)) throw error;
    const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!QueueUrl) throw new Error(`SQS returned no QueueUrl for ${name}`);
    await client.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: attributes }));
    return QueueUrl;
  }
}

// ---------------------------------------------------------------------------------------------
// Kinesis

async function ensureUsageStream(
  client: KinesisClient,
  stage: string,
  retentionHours: number,
): Promise<{ usageStreamName: string; usageStreamArn: string }> {
  const name = streamName(stage, usageStream);
  let summary = await describeStream(client, name);
  if (!summary) {
    try {
      await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: usageStream.shardCount }));
    } catch (error) {
      if ((error as Error).name !== 'ResourceInUseException') throw error;
    }
    summary = await waitForStream(client, name);
  }
  const hours = summary.RetentionPeriodHours ?? 24;
  if (hours !== retentionHours) {
    const input = { StreamName: name, RetentionPeriodHours: retentionHours };
    await client.send(
      hours < retentionHours
        ? new IncreaseStreamRetentionPeriodCommand(input)
        : new DecreaseStreamRetentionPeriodCommand(input),
    );
    summary = await waitForStream(client, name);
  }
  if (!summary.StreamARN) throw new Error(`Kinesis returned no StreamARN for ${name}`);
  return { usageStreamName: name, usageStreamArn: summary.StreamARN };
}

async function describeStream(client: KinesisClient, name: string) {
  try {
    return (await client.send(new DescribeStreamSummaryCommand({ StreamName: name })))
      .StreamDescriptionSummary;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

function waitForStream(client: KinesisClient, name: string) {
  return poll(`stream ${name} to become active`, async () => {
    const summary = await describeStream(client, name);
    return summary?.StreamStatus === 'ACTIVE' ? summary : undefined;
  });
}

// ---------------------------------------------------------------------------------------------
// Cognito

async function ensureUserPool(client: CognitoIdentityProviderClient, stage: string) {
  const poolName = userPoolName(stage);
  const pools = await client.send(new ListUserPoolsCommand({ MaxResults: 60 }));
  let userPoolId = pools.UserPools?.find((pool) => pool.Name === poolName)?.Id;
  if (!userPoolId) {
    const { passwordPolicy } = userPool;
    const created = await client.send(
      new CreateUserPoolCommand({
        PoolName: poolName,
        Policies: {
          PasswordPolicy: {
            MinimumLength: passwordPolicy.minimumLength,
            RequireLowercase: passwordPolicy.requireLowercase,
            RequireUppercase: passwordPolicy.requireUppercase,
            RequireNumbers: passwordPolicy.requireNumbers,
            RequireSymbols: passwordPolicy.requireSymbols,
          },
        },
        UsernameAttributes: [...userPool.usernameAttributes],
        AutoVerifiedAttributes: [...userPool.autoVerifiedAttributes],
        // Recorded for parity with AWS; cognito-local itself routes triggers by its global config.
        LambdaConfig: {
          PostConfirmation: `arn:aws:lambda:${LOCAL_REGION}:000000000000:function:${AUTH_TRIGGERS_FUNCTION}`,
        },
      }),
    );
    userPoolId = created.UserPool?.Id;
    if (!userPoolId) throw new Error(`Cognito returned no id for user pool ${poolName}`);
  }

  const clientName = userPoolClientName(stage);
  const clients = await client.send(
    new ListUserPoolClientsCommand({ UserPoolId: userPoolId, MaxResults: 60 }),
  );
  let userPoolClientId = clients.UserPoolClients?.find((c) => c.ClientName === clientName)?.ClientId;
  if (!userPoolClientId) {
    const created = await client.send(
      new CreateUserPoolClientCommand({
        UserPoolId: userPoolId,
        ClientName: clientName,
        // A browser app cannot keep a secret.
        GenerateSecret: false,
        ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
        IdTokenValidity: userPool.idTokenValidityMinutes,
        TokenValidityUnits: { IdToken: 'minutes' },
      }),
    );
    userPoolClientId = created.UserPoolClient?.ClientId;
    if (!userPoolClientId) throw new Error(`Cognito returned no id for app client ${clientName}`);
  }
  return { userPoolId, userPoolClientId };
}

/**
 * The group `admins` and one admin in it, the SaaS owner's sign-in for the admin routes. The
 * password is generated once and kept in `<dataDir>/admin.json`; every start makes the user's
 * password that one again, so the file is always the way in (and a deleted file a new password).
 * The user is made by AdminCreateUser and confirmed by a permanent password, so no PostConfirmation
 * runs: its account is provisioned, like any owner's whose trigger never ran, on its first `GET /me`.
 */
async function ensureAdmin(
  client: CognitoIdentityProviderClient,
  userPoolId: string,
  dataDir: string,
): Promise<LocalAdmin> {
  const path = join(dataDir, ADMIN_FILE);
  const admin = (await readAdmin(path)) ?? { email: LOCAL_ADMIN_EMAIL, password: generatePassword() };

  // Only if it is missing: cognito-local's CreateGroup replaces a group, members and all. Listed,
  // not GetGroup: cognito-local fails GetGroup with a 500 in a pool that has no group yet.
  if (!(await hasGroup(client, userPoolId, ADMIN_GROUP))) {
    await client.send(
      new CreateGroupCommand({
        UserPoolId: userPoolId,
        GroupName: ADMIN_GROUP,
        Description: "The SaaS owner's admins: the user API's /admin routes",
      }),
    );
  }

  // ListUsers rather than AdminGetUser: cognito-local logs every "no such user" as an error, which
  // would greet each first `npm start` with a stack trace.
  const existing = await client.send(
    new ListUsersCommand({ UserPoolId: userPoolId, Filter: `email = "${admin.email}"`, Limit: 1 }),
  );
  if ((existing.Users ?? []).length === 0) {
    await client.send(
      new AdminCreateUserCommand({
        UserPoolId: userPoolId,
        Username: admin.email,
        UserAttributes: [
          { Name: 'email', Value: admin.email },
          { Name: 'email_verified', Value: 'true' },
        ],
        MessageAction: 'SUPPRESS',
        TemporaryPassword: admin.password,
      }),
    );
  }
  // Permanent: the user is CONFIRMED and signs in with it, without a forced change.
  await client.send(
    new AdminSetUserPasswordCommand({
      UserPoolId: userPoolId,
      Username: admin.email,
      Password: admin.password,
      Permanent: true,
    }),
  );
  await client.send(
    new AdminAddUserToGroupCommand({ UserPoolId: userPoolId, Username: admin.email, GroupName: ADMIN_GROUP }),
  );

  await writeFile(`${path}.tmp`, `${JSON.stringify(admin, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  return admin;
}

async function hasGroup(client: CognitoIdentityProviderClient, userPoolId: string, name: string) {
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListGroupsCommand({ UserPoolId: userPoolId, Limit: 60, ...(token ? { NextToken: token } : {}) }),
    );
    if (page.Groups?.some((group) => group.GroupName === name)) return true;
    token = page.NextToken;
  } while (token);
  return false;
}

async function readAdmin(path: string): Promise<LocalAdmin | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LocalAdmin>;
    if (
      typeof parsed.email === 'string' &&
      typeof parsed.password === 'string' &&
      parsed.password.length > 0
    ) {
      return { email: parsed.email, password: parsed.password };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && !(error instanceof SyntaxError)) throw error;
  }
  return undefined;
}

/**
 * 128 random bits, plus one of each class userPool.passwordPolicy may require (lower, upper,
 * digit), comfortably past its minimum length.
 */
function generatePassword(): string {
  return `Tg1-${randomBytes(16).toString('base64url')}`;
}

// ---------------------------------------------------------------------------------------------

/**
 * Retries `probe` until it returns a value; throws after `timeoutMs`. A LocalStackError from the
 * probe means waiting longer cannot help (the engine died) and ends the wait at once.
 */
export async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof LocalStackError) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new LocalStackError(`timed out after ${timeoutMs / 1000} s waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
