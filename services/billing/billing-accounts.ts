import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { SubscriptionStatus } from '../../contracts/billing';
import { callDynamo, isConditionFailure, queryAll } from '../platform/dynamodb';
import {
  customerAccountItem,
  customerItem,
  handledEventItem,
  TRANSITION_PREFIX,
  transitionItem,
} from './billing-keys';
import type { BillingCustomer } from './exporter';

/** How long a handled Stripe event is remembered: Stripe retries a delivery for up to 3 days. */
export const HANDLED_EVENT_TTL_MS = 30 * 24 * 3600_000;

/** An account's subscription as Tollgate last applied it. */
export interface SubscriptionStanding {
  subscriptionId: string;
  status: SubscriptionStatus;
  priceId?: string;
  /** The plan the subscription put the account on (DEFAULT_PLAN_ID once canceled). */
  planId: string;
  currentPeriodStart?: string;
  currentPeriodEnd?: string;
  cancelAtPeriodEnd: boolean;
  /** When the subscription first went `past_due`/`unpaid` (cleared once paid). */
  pastDueSince?: string;
  /** Billing suspended the account (so only billing resumes it; an admin's suspension stays). */
  suspendedByBilling: boolean;
  /** The Stripe event that set this, and its `created` (seconds): older events never overwrite it. */
  eventId: string;
  eventCreated: number;
}

export interface BillingAccount {
  accountId: string;
  customerId: string;
  subscription?: SubscriptionStanding;
}

export interface Transition {
  at: string;
  eventId: string;
  eventType: string;
  from: { planId: string; status?: string };
  to: { planId: string; status?: string };
}

/**
 * The billing table's customer side (billing-keys.ts): each account's Stripe customer and
 * subscription standing, the customer → account map, the transitions, and the handled-event marks.
 */
export class BillingAccounts {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; table: string }) {
    this.#db = options.client;
    this.#table = options.table;
  }

  /**
   * Remembers the account's customer once: a second call keeps the first customer.
   * @returns the customer the account has now
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
      const existing = await this.customer(accountId);
      if (existing) customerId = existing;
    }
    // The reverse map is idempotent (same item every time), so it is written after, not in a transaction.
    await callDynamo(() =>
      this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: { ...customerAccountItem(customerId), accountId, customerId },
        }),
      ),
    );
    return customerId;
  }

  async account(accountId: string): Promise<BillingAccount | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({ TableName: this.#table, Key: customerItem(accountId), ConsistentRead: true }),
      ),
    );
    return out.Item ? accountOf(out.Item) : undefined;
  }

  async customer(accountId: string): Promise<string | undefined> {
    return (await this.account(accountId))?.customerId;
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
   * Sets the standing unless a newer event already set it (`eventCreated` greater).
   * @returns false when the stored standing is newer (nothing written)
   */
  async setSubscription(accountId: string, standing: SubscriptionStanding): Promise<boolean> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: customerItem(accountId),
            UpdateExpression: 'SET subscription = :s',
            ConditionExpression:
              'attribute_exists(pk) AND (attribute_not_exists(subscription) OR subscription.eventCreated <= :c)',
            ExpressionAttributeValues: { ':s': stripUndefined(standing), ':c': standing.eventCreated },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
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

  /** The account's transitions, oldest first. */
  async transitions(accountId: string): Promise<Transition[]> {
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :t)',
      ExpressionAttributeValues: { ':pk': customerItem(accountId).pk, ':t': TRANSITION_PREFIX },
      ConsistentRead: true,
    });
    return items.map(
      ({ at, eventId, eventType, from, to }) => ({ at, eventId, eventType, from, to }) as Transition,
    );
  }

  /** Marks a Stripe event handled. @returns true when it was not handled before */
  async markHandled(eventId: string, now: Date): Promise<boolean> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new PutCommand({
            TableName: this.#table,
            Item: {
              ...handledEventItem(eventId),
              handledAt: now.toISOString(),
              expiresAt: Math.floor((now.getTime() + HANDLED_EVENT_TTL_MS) / 1000),
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Forgets a mark, so a delivery whose handling failed is handled again on Stripe's retry. */
  async unmarkHandled(eventId: string): Promise<void> {
    await callDynamo(() =>
      this.#db.send(new DeleteCommand({ TableName: this.#table, Key: handledEventItem(eventId) })),
    );
  }

  /**
   * Every account with a customer. A paginated Scan filtered to CUSTOMER items: the table has no
   * index by item kind, and the scheduled export reads every customer anyway, a few times an hour.
   */
  async listCustomers(): Promise<BillingAccount[]> {
    const accounts: BillingAccount[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await callDynamo(() =>
        this.#db.send(
          new ScanCommand({
            TableName: this.#table,
            FilterExpression: 'sk = :c',
            ExpressionAttributeValues: { ':c': 'CUSTOMER' },
            ExclusiveStartKey: start,
            ConsistentRead: true,
          }),
        ),
      );
      for (const item of page.Items ?? []) accounts.push(accountOf(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return accounts;
  }

  /** listCustomers as the exporter's CustomerSource. */
  customers = async (): Promise<BillingCustomer[]> =>
    (await this.listCustomers()).map(({ accountId, customerId }) => ({ accountId, customerId }));
}

function accountOf(item: Record<string, unknown>): BillingAccount {
  return {
    accountId: item.accountId as string,
    customerId: item.customerId as string,
    ...(item.subscription ? { subscription: item.subscription as SubscriptionStanding } : {}),
  };
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
