import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type Stripe from 'stripe';
import { DEFAULT_PAST_DUE_GRACE_MS, type SubscriptionStatus } from '../../contracts/billing';
import { BillingMetric } from '../../contracts/metric-names';
import { DEFAULT_PLAN_ID } from '../../contracts/plans';
import type { PlanStore } from '../accounts/plan-store';
import { type Clock, systemClock } from '../platform/clock';
import type { MetricsRecorder } from '../platform/metrics';
import type { BillingAccounts, SubscriptionStanding } from './billing-accounts';

/** The snapshot events SubscriptionSync applies. */
export const SUBSCRIPTION_EVENTS = [
  'checkout.session.completed',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
] as const;

export type SyncOutcome =
  | { applied: true; accountId: string; standing: SubscriptionStanding }
  /** duplicate: the event was handled before; stale: a newer event already set the standing. */
  | { applied: false; reason: 'duplicate' | 'stale' | 'unknown_account' | 'ignored' };

export interface SubscriptionSyncOptions {
  readonly stripe: Stripe;
  readonly accounts: BillingAccounts;
  readonly plans: Pick<PlanStore, 'listPlans' | 'assignPlan' | 'setStatus' | 'standing'>;
  readonly metrics: MetricsRecorder;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** @default DEFAULT_PAST_DUE_GRACE_MS */
  readonly pastDueGraceMs?: number;
}

const LIVE: ReadonlySet<string> = new Set(['active', 'trialing', 'past_due', 'unpaid']);
const PAST_DUE: ReadonlySet<string> = new Set(['past_due', 'unpaid']);

/** Whether a subscription status still holds the account's paid plan. */
export const isLiveSubscription = (status: string | undefined): boolean =>
  status !== undefined && LIVE.has(status);

/**
 * Stripe subscription state → the account's plan and standing. Events arrive late, twice and out of
 * order, so an event is only a cue: the subscription's current state is read from Stripe, and the
 * write is guarded by the event's `created` so an older event never overwrites a newer one.
 */
export class SubscriptionSync {
  readonly #o: SubscriptionSyncOptions;
  readonly #clock: Clock;
  readonly #graceMs: number;

  constructor(options: SubscriptionSyncOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#graceMs = options.pastDueGraceMs ?? DEFAULT_PAST_DUE_GRACE_MS;
  }

  /** Applies a verified event once (deduplicated on its id). */
  async apply(event: Stripe.Event): Promise<SyncOutcome> {
    if (!(SUBSCRIPTION_EVENTS as readonly string[]).includes(event.type)) {
      return { applied: false, reason: 'ignored' };
    }
    if (!(await this.#o.accounts.markHandled(event.id, this.#clock.now()))) {
      return { applied: false, reason: 'duplicate' };
    }
    try {
      const outcome = await this.#applyOnce(event);
      if (outcome.applied) this.#o.metrics.addMetric(BillingMetric.webhookApplied, MetricUnit.Count, 1);
      return outcome;
    } catch (error) {
      // Not handled after all: Stripe's retry of this delivery must be applied, not skipped.
      await this.#o.accounts.unmarkHandled(event.id).catch(() => undefined);
      throw error;
    }
  }

  async #applyOnce(event: Stripe.Event): Promise<SyncOutcome> {
    let subscriptionId: string | undefined;
    let accountId: string | undefined;
    if (event.type === 'checkout.session.completed') {
      const session = event.data.object as Stripe.Checkout.Session;
      accountId = session.client_reference_id ?? session.metadata?.accountId ?? undefined;
      const customerId = idOf(session.customer);
      if (!accountId || !customerId) return { applied: false, reason: 'unknown_account' };
      await this.#o.accounts.rememberCustomer(accountId, customerId);
      subscriptionId = idOf(session.subscription);
      if (!subscriptionId) return { applied: false, reason: 'ignored' };
    } else {
      const snapshot = event.data.object as Stripe.Subscription;
      subscriptionId = snapshot.id;
      const customerId = idOf(snapshot.customer);
      accountId =
        (customerId ? await this.#o.accounts.accountOfCustomer(customerId) : undefined) ??
        snapshot.metadata?.accountId;
      if (accountId && customerId && !(await this.#o.accounts.customer(accountId))) {
        await this.#o.accounts.rememberCustomer(accountId, customerId);
      }
      if (!accountId) return { applied: false, reason: 'unknown_account' };
    }
    const current = await this.#o.stripe.subscriptions.retrieve(subscriptionId);
    return this.#applySubscription(accountId, current, event);
  }

  async #applySubscription(
    accountId: string,
    subscription: Stripe.Subscription,
    event: Stripe.Event,
  ): Promise<SyncOutcome> {
    const now = this.#clock.now();
    const before = (await this.#o.accounts.account(accountId))?.subscription;
    if (before && before.eventCreated > event.created) return { applied: false, reason: 'stale' };
    // Another subscription of the account (a second checkout) ending never removes the live one.
    if (before && before.subscriptionId !== subscription.id && isLiveSubscription(before.status)) {
      if (!isLiveSubscription(subscription.status)) return { applied: false, reason: 'ignored' };
    }
    const item = subscription.items.data[0];
    const priceId = item?.price.id;
    const status = subscription.status as SubscriptionStatus;
    const planId = await this.#planFor(status, priceId, before);
    const period = periodOf(subscription, item);
    const pastDueSince = PAST_DUE.has(status) ? (before?.pastDueSince ?? now.toISOString()) : undefined;
    const standing: SubscriptionStanding = {
      subscriptionId: subscription.id,
      status,
      planId,
      cancelAtPeriodEnd: subscription.cancel_at_period_end,
      suspendedByBilling: before?.suspendedByBilling ?? false,
      eventId: event.id,
      eventCreated: event.created,
      ...(priceId ? { priceId } : {}),
      ...period,
      ...(pastDueSince ? { pastDueSince } : {}),
    };
    if (!(await this.#o.accounts.setSubscription(accountId, standing))) {
      return { applied: false, reason: 'stale' };
    }
    if (!before || before.planId !== planId) await this.#o.plans.assignPlan(accountId, planId);
    if (
      standing.suspendedByBilling &&
      (status === 'active' || status === 'trialing' || status === 'canceled')
    ) {
      // Paid again (or no longer billed at all): billing lifts only its own suspension.
      await this.#resume(accountId, standing, now);
    }
    if (pastDueSince && now.getTime() - Date.parse(pastDueSince) >= this.#graceMs) {
      await this.#suspend(accountId, standing, now, event);
    }
    if (!before || before.planId !== planId || before.status !== status) {
      await this.#o.accounts.recordTransition(accountId, {
        at: now.toISOString(),
        eventId: event.id,
        eventType: event.type,
        from: { planId: before?.planId ?? DEFAULT_PLAN_ID, ...(before ? { status: before.status } : {}) },
        to: { planId, status },
      });
    }
    return { applied: true, accountId, standing };
  }

  /** Active/trialing → the plan sold at the price; past due → the plan kept; canceled → the default plan. */
  async #planFor(
    status: SubscriptionStatus,
    priceId: string | undefined,
    before: SubscriptionStanding | undefined,
  ): Promise<string> {
    if (!isLiveSubscription(status)) return DEFAULT_PLAN_ID;
    if (PAST_DUE.has(status) && before) return before.planId;
    const plans = await this.#o.plans.listPlans();
    const plan = plans.find((candidate) => candidate.billing?.priceId === priceId);
    if (!plan) {
      this.#o.logger.error('no plan is sold at the subscription price', { priceId });
      return before?.planId ?? DEFAULT_PLAN_ID;
    }
    return plan.planId;
  }

  /**
   * Suspends every account whose subscription has been past due longer than the grace. Run by the
   * scheduled export, since no event arrives when the grace merely runs out.
   * @returns the accounts suspended now
   */
  async sweepGrace(now: Date = this.#clock.now()): Promise<string[]> {
    const suspended: string[] = [];
    for (const account of await this.#o.accounts.listCustomers()) {
      const standing = account.subscription;
      if (!standing?.pastDueSince || standing.suspendedByBilling || !PAST_DUE.has(standing.status)) continue;
      if (now.getTime() - Date.parse(standing.pastDueSince) < this.#graceMs) continue;
      await this.#suspend(account.accountId, standing, now);
      suspended.push(account.accountId);
    }
    return suspended;
  }

  async #suspend(
    accountId: string,
    standing: SubscriptionStanding,
    now: Date,
    event?: Stripe.Event,
  ): Promise<void> {
    if (standing.suspendedByBilling) return;
    const current = await this.#o.plans.standing(accountId, { consistent: true });
    // An account an admin already suspended stays the admin's: billing must not resume it later.
    if (!current || current.status === 'suspended') return;
    standing.suspendedByBilling = true;
    await this.#o.accounts.setSubscription(accountId, standing);
    await this.#o.plans.setStatus(accountId, 'suspended', now);
    await this.#o.accounts.recordTransition(accountId, {
      at: now.toISOString(),
      eventId: event?.id ?? `grace:${standing.eventId}`,
      eventType: event?.type ?? 'grace.expired',
      from: { planId: standing.planId, status: 'active' },
      to: { planId: standing.planId, status: 'suspended' },
    });
  }

  async #resume(accountId: string, standing: SubscriptionStanding, now: Date): Promise<void> {
    standing.suspendedByBilling = false;
    await this.#o.accounts.setSubscription(accountId, standing);
    await this.#o.plans.setStatus(accountId, 'active', now);
  }
}

function idOf(value: string | { id: string } | null | undefined): string | undefined {
  if (!value) return undefined;
  return typeof value === 'string' ? value : value.id;
}

/** The billing period: on the item in current API versions, on the subscription in older ones. */
function periodOf(
  subscription: Stripe.Subscription,
  item: Stripe.SubscriptionItem | undefined,
): { currentPeriodStart?: string; currentPeriodEnd?: string } {
  const legacy = subscription as unknown as { current_period_start?: number; current_period_end?: number };
  const start = item?.current_period_start ?? legacy.current_period_start;
  const end = item?.current_period_end ?? legacy.current_period_end;
  return {
    ...(start ? { currentPeriodStart: new Date(start * 1000).toISOString() } : {}),
    ...(end ? { currentPeriodEnd: new Date(end * 1000).toISOString() } : {}),
  };
}
