import { DAY_SECONDS } from '../clock';
import type { EventPublisher } from '../events';
import type { StandInState } from '../state';
import {
  announceUpcomingInvoice,
  finalizeInvoice,
  finalizesAt,
  type Invoice,
  openRenewalInvoice,
} from './invoices';
import { periodEnd } from './periods';
import { changeSubscription, endSubscription, type Subscription } from './subscriptions';

const ENDED = new Set(['canceled', 'incomplete_expired']);

/** Stripe's default for the "upcoming renewal events" setting: `invoice.upcoming` 3 days ahead. */
export const DEFAULT_UPCOMING_RENEWAL_DAYS = 3;

/**
 * One period end reached: cancel if asked to, else renew with the draft invoice of the period that
 * ended (past_due when the renewal is declined).
 */
function reachPeriodEnd(subscription: Subscription, state: StandInState, events: EventPublisher): void {
  const end = subscription.current_period_end;
  if (subscription.cancel_at_period_end) {
    endSubscription(subscription, end, events);
    return;
  }
  const invoice = openRenewalInvoice(state, events, subscription, subscription.current_period_start, end);
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
      latest_invoice: invoice,
      ...(declined && subscription.status === 'active' ? { status: 'past_due' } : {}),
    },
    events,
  );
}

interface Due {
  readonly at: number;
  readonly run: (nowSeconds: number) => void;
}

/** Everything that falls due at some time: renewals, upcoming-invoice notices, finalizations. */
function dueList(state: StandInState, events: EventPublisher, upcomingDays: number): Due[] {
  const due: Due[] = [];
  for (const stored of state.subscriptions.values()) {
    const subscription = stored as Subscription;
    if (ENDED.has(subscription.status)) continue;
    const end = subscription.current_period_end;
    due.push({ at: end, run: () => reachPeriodEnd(subscription, state, events) });
    const notice = end - upcomingDays * DAY_SECONDS;
    // No renewal to announce when the subscription ends instead, or the period is shorter than the notice.
    const announce =
      upcomingDays > 0 &&
      !subscription.cancel_at_period_end &&
      notice >= subscription.current_period_start &&
      state.upcomingAnnounced.get(subscription.id) !== end;
    if (announce) {
      due.push({
        at: notice,
        run: () => {
          state.upcomingAnnounced.set(subscription.id, end);
          announceUpcomingInvoice(state, events, subscription);
        },
      });
    }
  }
  for (const stored of state.invoices.values()) {
    const invoice = stored as Invoice;
    if (invoice.status !== 'draft') continue;
    due.push({ at: finalizesAt(invoice), run: (now) => finalizeInvoice(state, events, invoice, now) });
  }
  return due;
}

/**
 * Brings the stand-in up to its (advanced) time, as a test clock does, running what fell due in the
 * order it fell due: `invoice.upcoming` `upcomingDays` before a renewal; at the period end a
 * cancellation takes effect, or the renewal opens a draft invoice (`invoice.created`) and starts the
 * next period; an hour later the draft is finalized (`invoice.finalized`). Payments are not
 * modelled: a renewal is paid unless the customer's renewals are declined.
 */
export function catchUpSubscriptions(
  state: StandInState,
  events: EventPublisher,
  nowSeconds: number,
  upcomingDays = DEFAULT_UPCOMING_RENEWAL_DAYS,
): void {
  for (;;) {
    const next = dueList(state, events, upcomingDays)
      .filter((due) => due.at <= nowSeconds)
      .sort((a, b) => a.at - b.at)[0];
    if (next === undefined) return;
    next.run(nowSeconds);
  }
}

/** A declined (`past_due`) subscription paid again: `active`, with `customer.subscription.updated`. */
export function settleSubscription(subscription: Subscription, events: EventPublisher): void {
  if (subscription.status === 'past_due' || subscription.status === 'unpaid') {
    changeSubscription(subscription, { status: 'active' }, events);
  }
}
