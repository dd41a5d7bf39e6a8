import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { SubscriptionStatus } from '../../contracts/billing';
import { callDynamo, isConditionFailure } from '../platform/dynamodb';
import {
  customerAccountItem,
  customerItem,
  handledEventItem,
  TRANSITION_PREFIX,
  transitionItem,
} from './billing-keys';
import type { BillingStanding } from './billing-summary';
import type { BillingCustomer } from './exporter';

/** A subscription as billing last applied it, and the Stripe event that made it apply. */
export interface SubscriptionState {
  readonly subscriptionId: string;
  readonly status: SubscriptionStatus;
  readonly priceId?: string;
  /** The plan the subscription's price is for (the default plan when none is). */
  readonly planId: string;
  readonly currentPeriodStart: string;
  readonly currentPeriodEnd: string;
  readonly cancelAtPeriodEnd: boolean;
  readonly eventId: string;
  /** The event's `created` (Unix seconds): an older event never replaces what a newer one set. */
  readonly eventCreated: number;
}

/** What the billing table knows of an account's customer (the `CUSTOMER` item). */
export interface CustomerRecord {
  readonly accountId: string;
  readonly customerId: string;
  readonly subscription?: SubscriptionState;
  /** When the subscription first went `past_due` or `unpaid` in its current spell (ISO 8601). */
  readonly pastDueSince?: string;
  /** Billing suspended the account (after the grace): only billing resumes it, when it is paid. */
  readonly suspendedByBilling?: boolean;
}

export interface Transition {
  readonly at: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly from: { planId: string; status: string };
  readonly to: { planId: string; status: string };
}

/** How long a handled event's mark is kept: longer than Stripe retries a delivery (3 days). */
const HANDLED_EVENT_TTL_SECONDS = 30 * 24 * 3600;

/**
 * The customer, subscription and event items of the billing table (billing-keys.ts); the export
 * ledger's items are export-ledger.ts's. Failures come by class as in the other stores
 * (services/platform/dynamodb.ts).
 */
export class BillingAccounts {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; table: string }) {
    this.#db = options.client;
    this.#table = options.table;
  }

  async customer(accountId: string): Promise<CustomerRecord | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({ TableName: this.#table, Key: customerItem(accountId), ConsistentRead: true }),
      ),
    );
    return out.Item ? recordOf(out.Item) : undefined;
  }

  /** What `GET /me/billing` shows of the account's customer and subscription. */
  async standing(accountId: string): Promise<BillingStanding | undefined> {
    const record = await this.customer(accountId);
    if (!record) return undefined;
    const sub = record.subscription;
    return {
      customerId: record.customerId,
      ...(sub
        ? {
            subscription: {
              status: sub.status,
              planId: sub.planId,
              currentPeriodStart: sub.currentPeriodStart,
              currentPeriodEnd: sub.currentPeriodEnd,
              ...(sub.cancelAtPeriodEnd ? { cancelAtPeriodEnd: true } : {}),
            },
          }
        : {}),
    };
  }

  /**
   * Remembers the account's customer, once: the first one remembered stays (a second checkout
   * racing the first must not orphan its customer). @returns the account's customer id
   */
  async rememberCustomer(accountId: string, customerId: string): Promise<string> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new PutCommand({
            TableName: this.#table,
            Item: { ...customerItem(accountId), accountId, customerId },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const remembered = (await this.customer(accountId))?.customerId ?? customerId;
    await callDynamo(() =>
      this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { ...customerAccountItem(remembered), accountId },
        }),
      ),
    );
    return remembered;
  }

  async accountOfCustomer(customerId: string): Promise<string | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({
          TableName: this.#table,
          Key: customerAccountItem(customerId),
          ConsistentRead: true,
        }),
      ),
    );
    return typeof out.Item?.accountId === 'string' ? out.Item.accountId : undefined;
  }

  /**
   * Saves the subscription as of `state.eventCreated`, unless an event created later already set it.
   * An event of the same second is applied again (the retrieved state is as new as it gets).
   * @returns false when a newer event's state is kept
   */
  async saveSubscription(
    accountId: string,
    state: SubscriptionState,
    extras: { pastDueSince?: string | null; suspendedByBilling?: boolean },
  ): Promise<boolean> {
    const sets = ['subscription = :s'];
    const removes: string[] = [];
    const values: Record<string, unknown> = { ':s': state, ':created': state.eventCreated };
    if (extras.pastDueSince === null) removes.push('pastDueSince');
    else if (extras.pastDueSince !== undefined) {
      sets.push('pastDueSince = :pd');
      values[':pd'] = extras.pastDueSince;
    }
    if (extras.suspendedByBilling !== undefined) {
      sets.push('suspendedByBilling = :sb');
      values[':sb'] = extras.suspendedByBilling;
    }
    try {
      await callDynamo(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: customerItem(accountId),
            UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
            ConditionExpression:
              'attribute_exists(pk) AND (attribute_not_exists(subscription) OR subscription.eventCreated <= :created)',
            ExpressionAttributeValues: values,
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async setSuspendedByBilling(accountId: string, suspended: boolean): Promise<void> {
    await callDynamo(() =>
      this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: customerItem(accountId),
          UpdateExpression: 'SET suspendedByBilling = :sb',
          ExpressionAttributeValues: { ':sb': suspended },
        }),
      ),
    );
  }

  async recordTransition(accountId: string, transition: Transition): Promise<void> {
    await callDynamo(() =>
      this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { ...transitionItem(accountId, transition.at, transition.eventId), ...transition },
        }),
      ),
    );
  }

  /** The account's plan and standing changes, oldest first. */
  async transitions(accountId: string): Promise<Transition[]> {
    const out = await callDynamo(() =>
      this.#db.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :t)',
          ExpressionAttributeValues: { ':pk': customerItem(accountId).pk, ':t': TRANSITION_PREFIX },
          ConsistentRead: true,
        }),
      ),
    );
    return ((out.Items ?? []) as (Transition & { sk: string })[])
      .sort((a, b) => a.sk.localeCompare(b.sk))
      .map(({ at, eventId, eventType, from, to }) => ({ at, eventId, eventType, from, to }));
  }

  async isHandled(eventId: string): Promise<boolean> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({ TableName: this.#table, Key: handledEventItem(eventId), ConsistentRead: true }),
      ),
    );
    return out.Item !== undefined;
  }

  /** Marks an event handled once its effects are written: a replay afterwards changes nothing. */
  async markHandled(eventId: string, type: string, now: Date): Promise<void> {
    await callDynamo(() =>
      this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            ...handledEventItem(eventId),
            type,
            handledAt: now.toISOString(),
            expiresAt: Math.floor(now.getTime() / 1000) + HANDLED_EVENT_TTL_SECONDS,
          },
        }),
      ),
    );
  }

  /**
   * Every account with a customer. A filtered Scan: the table holds a few dozen items per account
   * (days, transitions), and the jobs that list customers run every few minutes at most; a sparse
   * index would pay off only far beyond the accounts one deployment has.
   */
  async *records(): AsyncIterable<CustomerRecord> {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await callDynamo(() =>
        this.#db.send(
          new ScanCommand({
            TableName: this.#table,
            FilterExpression: 'sk = :c',
            ExpressionAttributeValues: { ':c': 'CUSTOMER' },
            ExclusiveStartKey: start,
          }),
        ),
      );
      for (const item of page.Items ?? []) yield recordOf(item);
      start = page.LastEvaluatedKey;
    } while (start);
  }

  /** The exporter's and reconciler's CustomerSource. */
  async *listCustomers(): AsyncIterable<BillingCustomer> {
    for await (const record of this.records()) {
      yield { accountId: record.accountId, customerId: record.customerId };
    }
  }
}

function recordOf(item: Record<string, unknown>): CustomerRecord {
  return {
    accountId: item.accountId as string,
    customerId: item.customerId as string,
    ...(item.subscription ? { subscription: item.subscription as SubscriptionState } : {}),
    ...(typeof item.pastDueSince === 'string' ? { pastDueSince: item.pastDueSince } : {}),
    ...(item.suspendedByBilling === true ? { suspendedByBilling: true } : {}),
  };
}
