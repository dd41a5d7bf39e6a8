import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { ENV } from '../../../contracts/config';
import {
  ACCOUNT_DIRECTORY_INDEX,
  ALERT_MARK_PREFIX,
  type IndexDefinition,
  KEY_LOOKUP_INDEX,
  type KeyAttribute,
  type TableDefinition,
  tableName,
  tables,
} from '../../../contracts/resources';
import type { Transport } from '../../../contracts/transport';
import type { TollgateFunction } from './tollgate-function';

export interface DataTablesProps {
  /** Part of every table name (`tollgate-<stage>-<id>`). */
  readonly stage: string;
  /**
   * What happens to the tables (and their data) when the stack is deleted. RETAIN also turns on
   * deletion protection.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

type TableId = TableDefinition['id'];

const attribute = (key: KeyAttribute): dynamodb.Attribute => ({
  name: key.name,
  type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER,
});

function indexProps(index: IndexDefinition): dynamodb.GlobalSecondaryIndexProps {
  return {
    indexName: index.indexName,
    partitionKey: attribute(index.partitionKey),
    ...(index.sortKey ? { sortKey: attribute(index.sortKey) } : {}),
    ...(index.nonKeyAttributes.length > 0
      ? { projectionType: dynamodb.ProjectionType.INCLUDE, nonKeyAttributes: [...index.nonKeyAttributes] }
      : { projectionType: dynamodb.ProjectionType.KEYS_ONLY }),
  };
}

/**
 * Every attribute a refusal summary writes (services/usage/refusals.ts): the usage table's key, the
 * expiry, and a count per reason and UTC hour. test/infra/refusals.test.ts checks the recorder's
 * own names against these patterns.
 */
export const REFUSAL_SUMMARY_ATTRIBUTES = [
  'pk',
  'sk',
  'expiresAt',
  'rate_limited#*',
  'quota_exceeded#*',
  'account_suspended#*',
] as const;

/**
 * The billing table's partitions user-api may touch: services/billing/billing-keys.ts's layout
 * (infra/cdk imports no services; test/infra/billing.test.ts checks these against it).
 */
export const BILLING_CUSTOMER_PARTITIONS = ['ACCOUNT#', 'CUSTOMER#'] as const;

/**
 * The usage table's partitions the SQS ledger's plain requests may reach: its own items (head,
 * DONE, journals, archives: `LEDGER#<name>…`, services/usage/ledger-store.ts) and the accounts'
 * counters its flushes add to (`ACCOUNT#<id>`, services/usage/counter-keys.ts). infra/cdk imports
 * no services; test/infra/sqs-ledger.test.ts holds these against the store's own requests.
 */
export const LEDGER_PARTITIONS = { ledger: 'LEDGER#', counters: 'ACCOUNT#' } as const;

/** Access granted only as part of TransactWriteItems: a plain PutItem or UpdateItem is refused. */
const transactionsOnly = {
  'ForAnyValue:StringEquals': { 'dynamodb:EnclosingOperation': ['TransactWriteItems'] },
};

/**
 * The accounts, keys, usage, plans and billing tables of contracts/resources.ts (the same
 * definitions the local stack creates): on demand, with point-in-time recovery, all alike.
 *
 * Access is granted per use case, by methods named after what the caller does. Each grants the
 * DynamoDB actions that use case sends (TransactWriteItems is authorised per item, as PutItem,
 * UpdateItem and ConditionCheckItem) and sets the table-name variables the caller's config
 * schema reads, so a permission and the variable that makes it useful cannot drift apart.
 */
export class DataTables extends Construct {
  readonly accounts: dynamodb.Table;
  readonly keys: dynamodb.Table;
  readonly usage: dynamodb.Table;
  /** The owner's plans (contracts/plans.ts), written by user-api's admin routes, read by the gates. */
  readonly plans: dynamodb.Table;
  /** Billing's own state (services/billing/billing-keys.ts): customers, transitions, the export ledger. */
  readonly billing: dynamodb.Table;

  constructor(scope: Construct, id: string, props: DataTablesProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const built = {} as Record<TableId, dynamodb.Table>;
    for (const definition of tables) {
      const table = new dynamodb.Table(this, definition.id, {
        tableName: tableName(props.stage, definition),
        partitionKey: attribute(definition.partitionKey),
        ...(definition.sortKey ? { sortKey: attribute(definition.sortKey) } : {}),
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        ...(definition.timeToLiveAttribute ? { timeToLiveAttribute: definition.timeToLiveAttribute } : {}),
        removalPolicy,
        deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      });
      for (const index of definition.globalSecondaryIndexes) table.addGlobalSecondaryIndex(indexProps(index));
      built[definition.id] = table;
    }
    this.accounts = built.accounts;
    this.keys = built.keys;
    this.usage = built.usage;
    this.plans = built.plans;
    this.billing = built.billing;
  }

  /**
   * key-api and an owner's API behind the gate (services/gate): the key check and the plan's
   * enforcement, and nothing else, no writes. It finds a presented key by its hash through the
   * KeyLookup index (no other read of the keys table), reads the account's standing (GetItem of
   * its `planId` and `status`) and its plan (GetItem), and, for a quota, the account's counted
   * usage (a Query of its partition, UsageReader.total).
   */
  allowGateKeyCheck(fn: TollgateFunction): void {
    this.#allow(fn, ['dynamodb:Query'], [`${this.keys.tableArn}/index/${KEY_LOOKUP_INDEX}`]);
    this.#allow(fn, ['dynamodb:GetItem'], [this.accounts.tableArn, this.plans.tableArn]);
    this.#allow(fn, ['dynamodb:Query'], [this.usage.tableArn]);
    this.#setKeyDataEnv(fn);
    this.#setPlansEnv(fn);
    this.#setUsageEnv(fn);
  }

  /**
   * A gate's summaries of the requests it refused (services/usage/refusals.ts RefusalRecorder): an
   * UpdateItem that may name only a refusal item's attributes — its key, its expiry and
   * `<reason>#<hour>` counts — so a gate can never touch a counter, a period item or a mark, though
   * they share the account's partition; and it reads nothing back.
   */
  allowRefusalSummaries(fn: TollgateFunction): void {
    this.#allow(fn, ['dynamodb:UpdateItem'], [this.usage.tableArn], {
      'ForAllValues:StringLike': { 'dynamodb:Attributes': [...REFUSAL_SUMMARY_ATTRIBUTES] },
      StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
    });
    this.#setUsageEnv(fn);
  }

  /** key-api: reads a key's day counter for the `usage` figure of its answers. */
  allowKeyDayCountRead(fn: TollgateFunction): void {
    this.#allow(fn, ['dynamodb:GetItem'], [this.usage.tableArn]);
    this.#setUsageEnv(fn);
  }

  /**
   * auth-triggers: creates an account and its first key in one transaction (conditional puts),
   * and reads the account back when a replayed trigger finds it already there.
   */
  allowAccountProvisioning(fn: TollgateFunction): void {
    this.#allow(
      fn,
      ['dynamodb:PutItem', 'dynamodb:ConditionCheckItem'],
      [this.accounts.tableArn, this.keys.tableArn],
      transactionsOnly,
    );
    this.#allow(fn, ['dynamodb:GetItem'], [this.accounts.tableArn]);
    this.#setKeyDataEnv(fn);
  }

  /**
   * user-api: everything the KeyStore does for an owner: list, create, reveal, roll and revoke
   * keys (gets, queries, puts in transactions, updates), read the account and bump its
   * `keysVersion` with every key it adds (an update in the same transaction: the lock that keeps
   * a plan's `maxKeys` exact), read the account's plan for that limit, and provision an account
   * whose sign-up trigger never ran (a put in a transaction).
   */
  allowKeyManagement(fn: TollgateFunction): void {
    this.#allow(
      fn,
      ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      [this.keys.tableArn],
    );
    this.#allow(fn, ['dynamodb:GetItem'], [this.accounts.tableArn, this.plans.tableArn]);
    this.#allow(fn, ['dynamodb:PutItem', 'dynamodb:UpdateItem'], [this.accounts.tableArn], transactionsOnly);
    this.#setKeyDataEnv(fn);
    this.#setPlansEnv(fn);
  }

  /**
   * user-api's admin routes (the owner's admins; the group check is in the app): list, read and
   * save plans (Scan, GetItem, PutItem), list and search accounts a page at a time (Query of the
   * AccountDirectory index; no Scan of the table), and assign a plan or suspend and resume an
   * account (UpdateItem of its `planId` and `status`). Never a delete: plans and accounts are
   * replaced or updated, and a suspended account keeps its keys and usage.
   */
  allowPlanAdministration(fn: TollgateFunction): void {
    this.#allow(fn, ['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:PutItem'], [this.plans.tableArn]);
    this.#allow(fn, ['dynamodb:UpdateItem'], [this.accounts.tableArn]);
    this.#allow(fn, ['dynamodb:Query'], [`${this.accounts.tableArn}/index/${ACCOUNT_DIRECTORY_INDEX}`]);
    this.#setKeyDataEnv(fn);
    this.#setPlansEnv(fn);
  }

  /**
   * user-api: daily series (Query), a key's totals (BatchGetItem) and single counters; the admin
   * list's usage this period is a Query too.
   */
  allowUsageRead(fn: TollgateFunction): void {
    this.#allow(fn, ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:BatchGetItem'], [this.usage.tableArn]);
    this.#setUsageEnv(fn);
  }

  /**
   * metering. Over SQS, for events without their producer's numbering (the ledger's are
   * allowLedgerCounting's), it writes dedupe marks (conditional puts) and counter ADDs, always
   * together in one TransactWriteItems, the only way this grant lets it write. Over Kinesis each counter
   * is one conditional UpdateItem guarded by the shard's sequence numbers, and it may read a
   * counter's watermark back (GetItem) when DynamoDB does not return it with a failed condition.
   */
  allowUsageCounting(fn: TollgateFunction, transport: Transport): void {
    if (transport === 'sqs') {
      this.#allow(fn, ['dynamodb:PutItem', 'dynamodb:UpdateItem'], [this.usage.tableArn], transactionsOnly);
    } else {
      this.#allow(fn, ['dynamodb:UpdateItem', 'dynamodb:GetItem'], [this.usage.tableArn]);
    }
    this.#setUsageEnv(fn);
  }

  /**
   * metering's SQS ledger (services/usage/ledger-store.ts), beside the marks of allowUsageCounting
   * (kept for events without a producer's numbering): every request a single item, never a
   * transaction. Its own items are read (GetItem of the head and DONE, BatchGetItem of journals
   * and archives, all consistent), written whole (PutItem of the head, conditional on its version;
   * of a journal; of an archive) and DONE advanced (UpdateItem); a flush adds to the counters with
   * plain conditional UpdateItems guarded by the ledger's watermark. Puts and reads reach only the
   * ledger's partitions, updates only those and the accounts' counters: a plain put can never
   * replace a counter or write a dedupe mark.
   */
  allowLedgerCounting(fn: TollgateFunction): void {
    const { ledger, counters } = LEDGER_PARTITIONS;
    const within = (prefixes: string[]) => ({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': prefixes.map((p) => `${p}*`) },
    });
    this.#allow(
      fn,
      ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:BatchGetItem'],
      [this.usage.tableArn],
      within([ledger]),
    );
    this.#allow(fn, ['dynamodb:UpdateItem'], [this.usage.tableArn], within([ledger, counters]));
    fn.function.addEnvironment(ENV.sqsDedupe, 'ledger');
    this.#setUsageEnv(fn);
  }

  /**
   * metering's provenance check (services/metering/provenance.ts): before counting, it reads each
   * event's key record (BatchGetItem of `accountId, keyId` by the table's own key) to check that the
   * key belongs to the account the event bills. Reads only, of the keys table only: no index, no
   * Query or Scan of an account's keys.
   */
  allowProvenanceCheck(fn: TollgateFunction): void {
    this.#allow(fn, ['dynamodb:BatchGetItem'], [this.keys.tableArn]);
    fn.function.addEnvironment(ENV.keysTable, this.keys.tableName);
  }

  /**
   * metering's quota alerts (services/metering/quota-alerts.ts), after a batch is counted: the
   * account's owner and plan (GetItem of its `email` and `planId`, GetItem of the plan; no Query
   * or Scan of who the customers are), its usage this period (a Query of its partition), and the
   * mark that makes each alert one email (a conditional PutItem, and a DeleteItem when the send
   * fails). Plain puts and deletes reach only those marks: the counters and dedupe marks stay
   * writable by the counting grant alone.
   */
  allowQuotaAlerts(fn: TollgateFunction): void {
    this.#allow(fn, ['dynamodb:GetItem'], [this.accounts.tableArn, this.plans.tableArn]);
    this.#allow(fn, ['dynamodb:Query'], [this.usage.tableArn]);
    // The alerts' outbox (services/usage/alert-outbox.ts): claimed with its index entry in one
    // transaction, leased and settled by conditional updates, read back, its index entries deleted.
    this.#allow(
      fn,
      ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem'],
      [this.usage.tableArn],
      { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${ALERT_MARK_PREFIX}*`] } },
    );
    // The accounts table (the keys table is the provenance check's).
    fn.function.addEnvironment(ENV.accountsTable, this.accounts.tableName);
    this.#setPlansEnv(fn);
    this.#setUsageEnv(fn);
  }

  /**
   * The billing jobs (services/billing-jobs: the Stripe webhook and the scheduled export and
   * reconciliation), the billing table's owner: its items (customers, transitions, handled events,
   * the export ledger and its leases) read, listed, written and expired in any way it needs. Of
   * the rest only what billing decides or reads: an account's plan and standing (GetItem and
   * UpdateItem of the account: no Scan of who the customers are, no put, no delete), the plans to
   * map a Stripe price to one (GetItem, Scan: a handful of items), and the counted usage (reads only).
   */
  allowBillingJobs(fn: TollgateFunction): void {
    this.#allow(
      fn,
      [
        'dynamodb:GetItem',
        'dynamodb:BatchGetItem',
        'dynamodb:Query',
        'dynamodb:Scan',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:ConditionCheckItem',
      ],
      [this.billing.tableArn],
    );
    this.#allow(fn, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [this.accounts.tableArn]);
    this.#allow(fn, ['dynamodb:GetItem', 'dynamodb:Scan'], [this.plans.tableArn]);
    this.#allow(fn, ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'], [this.usage.tableArn]);
    fn.function.addEnvironment(ENV.accountsTable, this.accounts.tableName);
    this.#setPlansEnv(fn);
    this.#setUsageEnv(fn);
    this.#setBillingEnv(fn);
  }

  /**
   * user-api's billing routes: an account's customer item (created once at its first checkout, with
   * the customer → account map) and its reported days for `GET /me/billing`. Only the `ACCOUNT#` and
   * `CUSTOMER#` partitions: the Stripe events the webhook handled are not user-api's to read or
   * write, and nothing is deleted.
   */
  allowBillingCustomer(fn: TollgateFunction): void {
    this.#allow(
      fn,
      [
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:ConditionCheckItem',
      ],
      [this.billing.tableArn],
      {
        'ForAllValues:StringLike': {
          'dynamodb:LeadingKeys': BILLING_CUSTOMER_PARTITIONS.map((p) => `${p}*`),
        },
      },
    );
    this.#setBillingEnv(fn);
  }

  #allow(
    fn: TollgateFunction,
    actions: string[],
    resources: string[],
    conditions?: Record<string, Record<string, unknown>>,
  ): void {
    fn.function.addToRolePolicy(
      new iam.PolicyStatement({ actions, resources, ...(conditions ? { conditions } : {}) }),
    );
  }

  #setKeyDataEnv(fn: TollgateFunction): void {
    fn.function.addEnvironment(ENV.accountsTable, this.accounts.tableName);
    fn.function.addEnvironment(ENV.keysTable, this.keys.tableName);
  }

  #setPlansEnv(fn: TollgateFunction): void {
    fn.function.addEnvironment(ENV.plansTable, this.plans.tableName);
  }

  #setBillingEnv(fn: TollgateFunction): void {
    fn.function.addEnvironment(ENV.billingTable, this.billing.tableName);
  }

  #setUsageEnv(fn: TollgateFunction): void {
    fn.function.addEnvironment(ENV.usageTable, this.usage.tableName);
  }
}
