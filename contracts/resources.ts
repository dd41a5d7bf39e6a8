import { DEFAULT_ACCEPTANCE_WINDOW, type LEDGER_FLUSH_PROFILES } from './config';

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
  readonly id: 'accounts' | 'keys' | 'usage' | 'plans' | 'billing';
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  readonly globalSecondaryIndexes: readonly IndexDefinition[];
  /** Attribute DynamoDB expires items by, if any. */
  readonly timeToLiveAttribute?: string;
}

/** GSI that key-api reads on a cache miss: SHA-256 of the key → owning key record. */
export const KEY_LOOKUP_INDEX = 'KeyLookup';

/**
 * GSI of the admin's account list (services/accounts/account-directory.ts): every account under the
 * one partition `directory`, sorted by its email address in lower case (`emailKey`), projecting what
 * a list row shows. A page, a sort by email either way and an email-prefix search are each one Query
 * of O(page) entries; accounts are written rarely (sign-up, plan, status), so one partition is enough.
 */
export const ACCOUNT_DIRECTORY_INDEX = 'AccountDirectory';

/** What puts an account item in the AccountDirectory index: written with the account, never changed. */
export function accountDirectoryAttributes(email: string): { directory: string; emailKey: string } {
  return { directory: 'account', emailKey: email.toLowerCase() };
}

export const accountsTable: TableDefinition = {
  id: 'accounts',
  partitionKey: { name: 'accountId', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: ACCOUNT_DIRECTORY_INDEX,
      partitionKey: { name: 'directory', type: 'S' },
      sortKey: { name: 'emailKey', type: 'S' },
      nonKeyAttributes: ['email', 'createdAt', 'planId', 'status'],
    },
  ],
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
 * Usage counters and the dedupe marks that make them exact (services/usage/counter-keys.ts is
 * the layout, docs/metering.md the design):
 *  - `ACCOUNT#<accountId>` / `DAY#<yyyy-mm-dd>#KEY#<keyId>`: a key's requests and units that day,
 *    its last use, and one attribute per route it was called on (`route#<METHOD> <template>`)
 *  - `EVENT#<eventId>` / `EVENT`: "this event is counted" (SQS), written in the same transaction
 *    as the counter it fed, and expired by TTL once the event could no longer be accepted anyway.
 */
/**
 * The partition prefix of metering's quota-alert marks (`ALERT#<accountId>`), the only usage items
 * metering writes outside a counter's transaction: its IAM grant is limited to it (infra/cdk).
 */
export const ALERT_MARK_PREFIX = 'ALERT#';

/**
 * The SES message tag that carries a quota alert's id (services/usage/alert-outbox.ts): SES's
 * send event names it, and the EventBridge rule that routes those events to metering matches it.
 */
export const ALERT_ID_TAG = 'tollgate-alert-id';

export const usageTable: TableDefinition = {
  id: 'usage',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  globalSecondaryIndexes: [],
  timeToLiveAttribute: 'expiresAt',
};

/** The owner's plans (contracts/plans.ts), by id; few items, read through the gate's cache. */
export const plansTable: TableDefinition = {
  id: 'plans',
  partitionKey: { name: 'planId', type: 'S' },
  globalSecondaryIndexes: [],
};

/**
 * Billing's own state (services/billing/billing-keys.ts is the layout, docs/billing.md the design):
 * each account's Stripe customer and subscription standing with its transitions, the Stripe events
 * already handled (expired by TTL), and the export ledger: per account and UTC day, the total last
 * reported to the billing provider. Only services/billing/ writes it.
 */
export const billingTable: TableDefinition = {
  id: 'billing',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  globalSecondaryIndexes: [],
  timeToLiveAttribute: 'expiresAt',
};

export const tables = [accountsTable, keysTable, usageTable, plansTable, billingTable] as const;

export function tableName(stage: string, table: TableDefinition): string {
  return `tollgate-${stage}-${table.id}`;
}

/**
 * How the event source (Lambda's event source mapping on AWS, the local pollers in npm start) hands
 * usage records to metering. Large batches are what make aggregation pay: a counter is written once
 * per (key, day) per batch, so the writes per event fall as batches fill. Under a backlog a batch
 * fills at once; when traffic is light the batching window bounds how long a record waits.
 */
export interface EventSourceDefinition {
  /** Most records in one invocation (10,000 is the most either event source takes). */
  readonly batchSize: number;
  /** Longest a record waits for its batch to fill; on AWS SQS needs ≥ 1 s for batches over 10. */
  readonly maxBatchingWindowSeconds: number;
}

export interface QueueDefinition {
  readonly id: 'usage';
  readonly eventSource: EventSourceDefinition;
  /** Longer than the consumer's timeout, so a batch in flight is not handed to a second consumer. */
  readonly visibilityTimeoutSeconds: number;
  readonly retentionSeconds: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  readonly deadLetterRetentionSeconds: number;
}

export const usageQueue: QueueDefinition = {
  id: 'usage',
  eventSource: { batchSize: 10_000, maxBatchingWindowSeconds: 1 },
  // Six times the metering function's 30 s timeout (infra/cdk), as AWS advises: a batch of 10,000
  // takes about 5 s against DynamoDB Local, well under a second against DynamoDB.
  visibilityTimeoutSeconds: 180,
  retentionSeconds: 4 * 24 * 3600,
  maxReceiveCount: 5,
  deadLetterRetentionSeconds: 14 * 24 * 3600,
};

/**
 * The usage queue's batching window under each of the SQS ledger's flush profiles
 * (TOLLGATE_LEDGER_FLUSH), for the event source mapping in infra/cdk and the local pollers alike.
 * Every commit rewrites the ledger's head and writes a journal, so `economy` gathers 5 s: a fifth of
 * the commits, which is where its savings at low rates come from and what keeps one head out of
 * contention at more pollers (docs/metering.md, "Head contention"); usage then shows within about
 * 5 s. The others keep the queue's 1 s, the lag they promise.
 */
export const LEDGER_QUEUE_BATCHING_WINDOW_SECONDS: Readonly<
  Record<(typeof LEDGER_FLUSH_PROFILES)[number], number>
> = {
  fresh: usageQueue.eventSource.maxBatchingWindowSeconds,
  balanced: usageQueue.eventSource.maxBatchingWindowSeconds,
  economy: 5,
};

/**
 * The SQS ledger's backstop: what its schedule sends the metering function (the EventBridge rule's
 * input on AWS, a timer locally) so journals committed just before traffic stopped reach the
 * counters without waiting for the next batch.
 */
export const LEDGER_BACKSTOP_EVENT = { tollgate: 'ledger-backstop' } as const;

export const LEDGER_BACKSTOP_INTERVAL_SECONDS = 60;

export function isLedgerBackstopEvent(event: unknown): boolean {
  return (
    typeof event === 'object' &&
    event !== null &&
    (event as Record<string, unknown>).tollgate === LEDGER_BACKSTOP_EVENT.tollgate
  );
}

/**
 * The SQS ledger's scheduled tail: the message the consumer sends its own usage queue, with a
 * delay, when it commits the first journal no flush has claimed (docs/metering.md, "The SQS
 * ledger"). Its delivery flushes what is pending unless that journal was flushed meanwhile; it is
 * acknowledged, never counted or dead-lettered.
 */
const LEDGER_TICK = 'ledger-tick';

export const ledgerTickBody = (journal: number): string => JSON.stringify({ tollgate: LEDGER_TICK, journal });

/** The journal a scheduled tail is for, or undefined if the body is not one. */
export function parseLedgerTick(body: string): number | undefined {
  if (!body.startsWith(`{"tollgate":"${LEDGER_TICK}"`)) return undefined;
  try {
    const journal = (JSON.parse(body) as { journal?: unknown }).journal;
    return typeof journal === 'number' && Number.isSafeInteger(journal) && journal > 0 ? journal : undefined;
  } catch {
    return undefined;
  }
}

/** SQS message delays are whole seconds, at most 15 minutes. */
export const SQS_MAX_DELAY_SECONDS = 900;

export function queueName(stage: string, queue: QueueDefinition, deadLetter = false): string {
  return `tollgate-${stage}-${queue.id}${deadLetter ? '-dlq' : ''}`;
}

export interface StreamDefinition {
  readonly id: 'usage';
  readonly eventSource: EventSourceDefinition;
  /** Shards when the stream is provisioned (CDK context `kinesisShards`, or on demand). */
  readonly shardCount: number;
  /**
   * At least the late window plus a day: a batch metering could not count (DynamoDB down for
   * long) can still be read back and counted while its events are within the late window.
   */
  readonly retentionHours: number;
}

export const usageStream: StreamDefinition = {
  id: 'usage',
  eventSource: { batchSize: 10_000, maxBatchingWindowSeconds: 1 },
  shardCount: 1,
  retentionHours: DEFAULT_ACCEPTANCE_WINDOW.lateMs / 3_600_000 + 24,
};

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
