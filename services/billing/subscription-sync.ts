import type { Logger } from '@aws-lambda-powertools/logger';
import type Stripe from 'stripe';
import { SUBSCRIPTION_STATUSES, type SubscriptionStatus } from '../../contracts/billing';
import { DEFAULT_PLAN_ID } from '../../contracts/plans';
import type { PlanStore } from '../accounts/plan-store';
import { type Clock, systemClock } from '../platform/clock';
import type { BillingAccounts, CustomerRecord, SubscriptionState } from './billing-accounts';

/** What an event did: `stale` when a newer event's state was already applied. */
export type SyncOutcome = 'applied' | 'unchanged' | 'stale' | 'ignored';

export const SUBSCRIPTION_EVENTS = [
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
] as const;

/**
 * Stripe subscriptions → the account's plan and standing (docs/billing.md, "Subscription in →
 * plan"). Stripe delivers events at least once and in no guaranteed order, so an event is only a
 * cue: the subscription is retrieved as it is now, and saved only over the state of an event created
 * no later (billing-accounts.ts `saveSubscription`). The plan and status follow from that state:
 *  - active, trialing: the plan whose `billing.priceId` is the subscription's price;
 *  - past_due, unpaid: the plan stays; after `graceMs` the account is suspended (`sweepGrace`);
 *  - canceled, incomplete_expired: the default plan.
 */
export class SubscriptionSync {
  readonly #stripe: Stripe;
  readonly #accounts: BillingAccounts;
  readonly #plans: PlanStore;
  readonly #graceMs: number;
  readonly #logger: Logger;
  readonly #clock: Clock;

  constructor(options: {
    stripe: Stripe;
    accounts: BillingAccounts;
    plans: PlanStore;
    graceMs: number;
    logger: Logger;
    clock?: Clock;
  }) {
    this.#stripe = options.stripe;
    this.#accounts = options.accounts;
    this.#plans = options.plans;
    this.#graceMs = options.graceMs;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
  }

  /** Applies a verified snapshot event; types it does not handle are `ignored`. */
  async handle(event: Stripe.Event): Promise<SyncOutcome> {
    if (event.type === 'checkout.session.completed') return this.#checkoutCompleted(event);
    if ((SUBSCRIPTION_EVENTS as readonly string[]).includes(event.type)) {
      const subscription = event.data.object as Stripe.Subscription;
      const accountId = await this.#accountOf(subscription);
      if (!accountId) {
        this.#logger.warn('subscription of no known account', {
          subscription: subscription.id,
          event: event.id,
        });
        return 'ignored';
      }
      return this.#apply(accountId, subscription.id, event);
    }
    return 'ignored';
  }

  async #checkoutCompleted(event: Stripe.Event): Promise<SyncOutcome> {
    const session = event.data.object as Stripe.Checkout.Session;
    const accountId = session.client_reference_id ?? session.metadata?.accountId;
    const customer = typeof session.customer === 'string' ? session.customer : session.customer?.id;
    if (!accountId || !customer || session.mode !== 'subscription') return 'ignored';
    await this.#accounts.rememberCustomer(accountId, customer);
    const subscription =
      typeof session.subscription === 'string' ? session.subscription : session.subscription?.id;
    return subscription ? this.#apply(accountId, subscription, event) : 'applied';
  }

  async #accountOf(subscription: Stripe.Subscription): Promise<string | undefined> {
    const customer =
      typeof subscription.customer === 'string' ? subscription.customer : subscription.customer.id;
    return (await this.#accounts.accountOfCustomer(customer)) ?? subscription.metadata?.accountId;
  }

  async #apply(accountId: string, subscriptionId: string, event: Stripe.Event): Promise<SyncOutcome> {
    // The current state, not the event's snapshot: what arrives late cannot undo what came after.
    const subscription = await this.#stripe.subscriptions.retrieve(subscriptionId);
    const customer =
      typeof subscription.customer === 'string' ? subscription.customer : subscription.customer.id;
    // A subscription event may come before checkout.session.completed: remember the customer first
    // (one read when it is already remembered, the usual case, rather than two writes every event).
    let before = await this.#accounts.customer(accountId);
    if (before?.customerId !== customer) {
      await this.#accounts.rememberCustomer(accountId, customer);
      before = await this.#accounts.customer(accountId);
    }
    const state = await this.#stateOf(subscription, event);
    const now = this.#clock.now();
    const pastDue = state.status === 'past_due' || state.status === 'unpaid';
    const pastDueSince = pastDue ? (before?.pastDueSince ?? now.toISOString()) : null;
    const saved = await this.#accounts.saveSubscription(accountId, state, { pastDueSince });
    if (!saved) return 'stale';
    return this.#settle(
      accountId,
      { ...before, subscription: state, ...(pastDueSince ? { pastDueSince } : {}) },
      {
        eventId: event.id,
        eventType: event.type,
        now,
      },
    );
  }

  async #stateOf(subscription: Stripe.Subscription, event: Stripe.Event): Promise<SubscriptionState> {
    const item = subscription.items.data[0];
    const priceId = item?.price.id;
    const plans = await this.#plans.listPlans();
    const planId = plans.find((plan) => priceId !== undefined && plan.billing?.priceId === priceId)?.planId;
    const status = (SUBSCRIPTION_STATUSES as readonly string[]).includes(subscription.status)
      ? (subscription.status as SubscriptionStatus)
      : 'incomplete';
    const seconds = (value: number | undefined) => new Date((value ?? 0) * 1000).toISOString();
    return {
      subscriptionId: subscription.id,
      status,
      ...(priceId ? { priceId } : {}),
      planId: planId ?? DEFAULT_PLAN_ID,
      currentPeriodStart: seconds(item?.current_period_start),
      currentPeriodEnd: seconds(item?.current_period_end),
      cancelAtPeriodEnd: subscription.cancel_at_period_end === true,
      eventId: event.id,
      eventCreated: event.created,
    };
  }

  /** Brings the account's plan and status to what its subscription says. */
  async #settle(
    accountId: string,
    record: Partial<CustomerRecord> & { subscription: SubscriptionState },
    cause: { eventId: string; eventType: string; now: Date },
  ): Promise<SyncOutcome> {
    const standing = await this.#plans.standing(accountId, { consistent: true });
    if (!standing) return 'ignored';
    const { status } = record.subscription;
    let planId = standing.planId;
    let accountStatus = standing.status;
    let suspendedByBilling = record.suspendedByBilling === true;
    if (status === 'active' || status === 'trialing') {
      planId = record.subscription.planId;
      if (suspendedByBilling) {
        accountStatus = 'active';
        suspendedByBilling = false;
      }
    } else if (status === 'canceled' || status === 'incomplete_expired') {
      planId = DEFAULT_PLAN_ID;
      if (suspendedByBilling) {
        accountStatus = 'active';
        suspendedByBilling = false;
      }
    } else if ((status === 'past_due' || status === 'unpaid') && record.pastDueSince) {
      const overdue = cause.now.getTime() - Date.parse(record.pastDueSince) >= this.#graceMs;
      if (overdue && accountStatus === 'active') {
        accountStatus = 'suspended';
        suspendedByBilling = true;
      }
    }
    if (planId === standing.planId && accountStatus === standing.status) return 'unchanged';
    if (planId !== standing.planId) await this.#plans.assignPlan(accountId, planId);
    if (accountStatus !== standing.status) await this.#plans.setStatus(accountId, accountStatus, cause.now);
    if (suspendedByBilling !== (record.suspendedByBilling === true)) {
      await this.#accounts.setSuspendedByBilling(accountId, suspendedByBilling);
    }
    await this.#accounts.recordTransition(accountId, {
      at: cause.now.toISOString(),
      eventId: cause.eventId,
      eventType: cause.eventType,
      from: { planId: standing.planId, status: standing.status },
      to: { planId, status: accountStatus },
    });
    this.#logger.info('billing changed an account', {
      accountId,
      planId,
      status: accountStatus,
      event: cause.eventId,
    });
    return 'applied';
  }

  /**
   * Suspends every account whose subscription has been past due for longer than the grace: no
   * event comes when a grace ends, so the export schedule runs this. @returns accounts suspended
   */
  async sweepGrace(now: Date = this.#clock.now()): Promise<number> {
    let suspended = 0;
    for await (const record of this.#accounts.records()) {
      if (!record.subscription || !record.pastDueSince || record.suspendedByBilling) continue;
      const outcome = await this.#settle(
        record.accountId,
        { ...record, subscription: record.subscription },
        { eventId: `grace-${record.subscription.subscriptionId}`, eventType: 'grace.ended', now },
      );
      if (outcome === 'applied') suspended++;
    }
    return suspended;
  }
}
