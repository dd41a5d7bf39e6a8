/**
 * The one description of Tollgate's stateful resources. The local stack turns it into
 * CreateTable / CreateQueue / CreateUserPool calls and the CDK app into constructs, so the two
 * cannot drift: change a key schema, an index or a queue setting here and both follow.
 */

export type AttributeType = 'S' | 'N';

export interface KeyAttribute {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** Non-key attributes copied into the index; the table and index keys are always projected. */
  readonly nonKeyAttributes: readonly string[];
}

export interface TableDefinition {
  /** Logical id, also the suffix of the physical name (`tollgate-<stage>-<id>`). */
  readonly id: 'accounts' | 'keys' | 'usage';
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  readonly globalSecondaryIndexes: readonly IndexDefinition[];
  /** Attribute DynamoDB expires items by, if any. */
  readonly timeToLiveAttribute?: string;
}

/** GSI that key-api reads on a cache miss: SHA-256 of the key → owning key record. */
export const KEY_LOOKUP_INDEX = 'KeyLookup';

export const accountsTable: TableDefinition = {
  id: 'accounts',
  partitionKey: { name: 'accountId', type: 'S' },
  globalSecondaryIndexes: [],
};

export const keysTable: TableDefinition = {
  id: 'keys',
  partitionKey: { name: 'accountId', type: 'S' },
  sortKey: { name: 'keyId', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: KEY_LOOKUP_INDEX,
      partitionKey: { name: 'keyHash', type: 'S' },
      // Exactly what a key check needs; names, dates of creation etc. stay out of the index.
      nonKeyAttributes: ['status', 'expiresAt'],
    },
  ],
};

/**
 * Counters, daily rollups and the dedupe marks that make them exact (see docs/metering.md):
 *  - `KEY#<keyId>` / `DAY#<yyyy-mm-dd>`: a key's requests that day
 *  - `KEY#<keyId>` / `TOTAL`: a key's all-time requests and last use
 *  - `ACCOUNT#<accountId>` / `DAY#<yyyy-mm-dd>`: an account's requests that day
 *  - `EVENT#<eventId>` / `EVENT`: "this event is counted", written in the same transaction as the
 *    counters it fed, and expired by TTL once the event could no longer be accepted anyway.
 */
export const usageTable: TableDefinition = {
  id: 'usage',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  globalSecondaryIndexes: [],
  timeToLiveAttribute: 'expiresAt',
};

export const tables = [accountsTable, keysTable, usageTable] as const;

export function tableName(stage: string, table: TableDefinition): string {
  return `tollgate-${stage}-${table.id}`;
}

export interface QueueDefinition {
  readonly id: 'usage';
  /** Longer than the consumer's timeout, so a batch in flight is not handed to a second consumer. */
  readonly visibilityTimeoutSeconds: number;
  readonly retentionSeconds: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  readonly deadLetterRetentionSeconds: number;
}

export const usageQueue: QueueDefinition = {
  id: 'usage',
  visibilityTimeoutSeconds: 60,
  retentionSeconds: 4 * 24 * 3600,
  maxReceiveCount: 5,
  deadLetterRetentionSeconds: 14 * 24 * 3600,
};

export function queueName(stage: string, queue: QueueDefinition, deadLetter = false): string {
  return `tollgate-${stage}-${queue.id}${deadLetter ? '-dlq' : ''}`;
}

export interface StreamDefinition {
  readonly id: 'usage';
  readonly shardCount: number;
  readonly retentionHours: number;
}

export const usageStream: StreamDefinition = { id: 'usage', shardCount: 1, retentionHours: 24 };

export function streamName(stage: string, stream: StreamDefinition): string {
  return `tollgate-${stage}-${stream.id}-stream`;
}

export interface UserPoolDefinition {
  readonly passwordPolicy: {
    readonly minimumLength: number;
    readonly requireLowercase: boolean;
    readonly requireUppercase: boolean;
    readonly requireNumbers: boolean;
    readonly requireSymbols: boolean;
  };
  /** Users sign in with their email address, which Cognito verifies with a code. */
  readonly usernameAttributes: readonly ['email'];
  readonly autoVerifiedAttributes: readonly ['email'];
  readonly idTokenValidityMinutes: number;
}

export const userPool: UserPoolDefinition = {
  passwordPolicy: {
    minimumLength: 10,
    requireLowercase: true,
    requireUppercase: true,
    requireNumbers: true,
    requireSymbols: false,
  },
  usernameAttributes: ['email'],
  autoVerifiedAttributes: ['email'],
  idTokenValidityMinutes: 60,
};

export function userPoolName(stage: string): string {
  return `tollgate-${stage}-users`;
}

export function userPoolClientName(stage: string): string {
  return `tollgate-${stage}-web`;
}
