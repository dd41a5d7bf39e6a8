import type { EventPublisher } from '../events';
import type { StandInState } from '../state';
import { periodEnd } from './periods';
import { changeSubscription, endSubscription, type Subscription } from './subscriptions';

const ENDED = new Set(['canceled', 'incomplete_expired']);

/** One period end reached: cancel if asked to, else renew (past_due when the renewal is declined). */
function reachPeriodEnd(subscription: Subscription, state: StandInState, events: EventPublisher): void {
  const end = subscription.current_period_end;
  if (subscription.cancel_at_period_end) {
    endSubscription(subscription, end, events);
    return;
  }
  const first = subscription.items.data[0];
  const recurring = first?.price.recurring ?? { interval: 'month', interval_count: 1 };
  const next = periodEnd(end, recurring.interval, recurring.interval_count);
  const items = subscription.items.data.map((item) => ({
    ...item,
    current_period_start: end,
    current_period_end: next,
  }));
  const declined = state.decliningCustomers.has(subscription.customer);
  changeSubscription(
    subscription,
    {
      current_period_start: end,
      current_period_end: next,
      items: { ...subscription.items, data: items },
      ...(declined && subscription.status === 'active' ? { status: 'past_due' } : {}),
    },
    events,
  );
}

/**
 * Brings every subscription up to the stand-in's (advanced) time, period end by period end, as a
 * test clock does: cancellations at period end take effect, renewals start the next period.
 * Invoices are not modelled: a renewal is paid unless the customer's renewals are declined.
 */
export function catchUpSubscriptions(state: StandInState, events: EventPublisher, nowSeconds: number): void {
  for (const stored of state.subscriptions.values()) {
    const subscription = stored as Subscription;
    while (!ENDED.has(subscription.status) && subscription.current_period_end <= nowSeconds) {
      reachPeriodEnd(subscription, state, events);
    }
  }
}

/** A declined (`past_due`) subscription paid again: `active`, with `customer.subscription.updated`. */
export function settleSubscription(subscription: Subscription, events: EventPublisher): void {
  if (subscription.status === 'past_due' || subscription.status === 'unpaid') {
    changeSubscription(subscription, { status: 'active' }, events);
  }
}
