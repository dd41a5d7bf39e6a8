import { invalidRequest, noSuch } from '../errors';
import type { EventCause, EventPublisher } from '../events';
import { newId } from '../ids';
import type { RequestContext, Routes } from '../router';
import { type StandInState, type StripeObject, snapshot } from '../state';
import { priceById } from './catalog';
import { periodEnd } from './periods';

interface Recurring {
  readonly interval: string;
  readonly interval_count: number;
}

interface SubscriptionItem extends StripeObject {
  price: StripeObject & { recurring: Recurring };
  current_period_start: number;
  current_period_end: number;
}

/** The fields the lifecycle reads and writes; the rest is answered as stored. */
export interface Subscription extends StripeObject {
  customer: string;
  status: string;
  cancel_at_period_end: boolean;
  cancel_at: number | null;
  canceled_at: number | null;
  ended_at: number | null;
  current_period_start: number;
  current_period_end: number;
  items: { object: 'list'; data: SubscriptionItem[]; has_more: boolean; url: string };
  metadata: Record<string, string>;
}

function newItem(subscription: string, price: StripeObject, start: number, end: number): SubscriptionItem {
  return {
    id: newId('si'),
    object: 'subscription_item',
    billing_thresholds: null,
    created: start,
    current_period_end: end,
    current_period_start: start,
    discounts: [],
    metadata: {},
    price: snapshot(price) as SubscriptionItem['price'],
    quantity: 1,
    subscription,
    tax_rates: [],
  };
}

/** A subscription as a completed Checkout Session in subscription mode creates it: active, paid. */
export function newSubscription(customer: string, price: StripeObject, nowSeconds: number): Subscription {
  const { interval, interval_count } = price.recurring as Recurring;
  const end = periodEnd(nowSeconds, interval, interval_count);
  const id = newId('sub');
  return {
    id,
    object: 'subscription',
    application: null,
    automatic_tax: { enabled: false, liability: null },
    billing_cycle_anchor: nowSeconds,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: 'charge_automatically',
    created: nowSeconds,
    currency: price.currency,
    // Stripe's 2024 schema has the period on the subscription, API versions since 2025-03-31 on
    // its items: the stand-in answers both, so it validates against the one and types as the other.
    current_period_end: end,
    current_period_start: nowSeconds,
    customer,
    default_payment_method: null,
    description: null,
    discounts: [],
    ended_at: null,
    items: {
      object: 'list',
      data: [newItem(id, price, nowSeconds, end)],
      has_more: false,
      url: `/v1/subscription_items?subscription=${id}`,
    },
    latest_invoice: null,
    livemode: false,
    metadata: {},
    pause_collection: null,
    pending_update: null,
    schedule: null,
    start_date: nowSeconds,
    status: 'active',
    test_clock: null,
    trial_end: null,
    trial_start: null,
  };
}

export function subscriptionById(state: StandInState, id: string): Subscription {
  const subscription = state.subscriptions.get(id);
  if (subscription === undefined) throw noSuch('subscription', id, 'id');
  return subscription as Subscription;
}

/** Sets fields, publishing `customer.subscription.updated` with their previous values. */
export function changeSubscription(
  subscription: Subscription,
  changes: Partial<Subscription>,
  events: EventPublisher,
  cause?: EventCause,
): void {
  const previous: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(changes)) {
    if (JSON.stringify(subscription[key]) !== JSON.stringify(value))
      previous[key] = snapshot(subscription[key]);
  }
  if (Object.keys(previous).length === 0) return;
  Object.assign(subscription, changes);
  events.publish('customer.subscription.updated', subscription, previous, cause);
}

/** Ends a subscription now: `canceled`, and `customer.subscription.deleted`. */
export function endSubscription(
  subscription: Subscription,
  nowSeconds: number,
  events: EventPublisher,
  cause?: EventCause,
): void {
  Object.assign(subscription, {
    status: 'canceled',
    canceled_at: subscription.canceled_at ?? nowSeconds,
    ended_at: nowSeconds,
    cancel_at: null,
  });
  events.publish('customer.subscription.deleted', subscription, undefined, cause);
}

function replaceItems(subscription: Subscription, context: RequestContext): SubscriptionItem[] | undefined {
  const given = context.params.list('items');
  if (given.length === 0) return undefined;
  return given.map((item) => {
    const id = item.optionalString('id');
    const existing = subscription.items.data.find((candidate) => candidate.id === id);
    if (id !== undefined && existing === undefined) throw noSuch('subscription item', id, 'items[0][id]');
    const priceId = item.optionalString('price');
    const price =
      priceId === undefined ? existing?.price : priceById(context.state, priceId, 'items[0][price]');
    if (price === undefined) throw invalidRequest('Each item needs a price.', 'items[0][price]');
    const { current_period_start: start, current_period_end: end } = subscription;
    return {
      ...newItem(subscription.id, price, start, end),
      ...(existing === undefined ? {} : { id: existing.id, created: existing.created }),
    };
  });
}

function updateSubscription(context: RequestContext): Subscription {
  const subscription = subscriptionById(context.state, context.path.subscription_exposed_id ?? '');
  if (subscription.status === 'canceled') {
    throw invalidRequest('A canceled subscription can only update its cancellation_details and metadata.');
  }
  const changes: Partial<Subscription> = {};
  const cancelAtPeriodEnd = context.params.optionalBoolean('cancel_at_period_end');
  if (cancelAtPeriodEnd !== undefined) {
    changes.cancel_at_period_end = cancelAtPeriodEnd;
    changes.cancel_at = cancelAtPeriodEnd ? subscription.current_period_end : null;
    changes.canceled_at = cancelAtPeriodEnd ? context.time.nowSeconds() : null;
  }
  const metadata = context.params.metadata();
  if (metadata !== undefined) changes.metadata = { ...subscription.metadata, ...metadata };
  const items = replaceItems(subscription, context);
  if (items !== undefined) changes.items = { ...subscription.items, data: items };
  const cause = { requestId: context.requestId, idempotencyKey: context.idempotencyKey };
  changeSubscription(subscription, changes, context.events, cause);
  return subscription;
}

export const subscriptionRoutes: Routes = {
  'GET /v1/subscriptions': ({ params, state }) => {
    const customer = params.optionalString('customer');
    const status = params.optionalString('status');
    // As Stripe documents: without `status`, every subscription not canceled; `all` includes those.
    const statusMatches = (sub: StripeObject) =>
      status === 'all' || (status === undefined ? sub.status !== 'canceled' : sub.status === status);
    const data = [...state.subscriptions.values()]
      .filter((sub) => (customer === undefined || sub.customer === customer) && statusMatches(sub))
      .reverse();
    return { object: 'list', data, has_more: false, url: '/v1/subscriptions' };
  },
  'GET /v1/subscriptions/{subscription_exposed_id}': ({ path, state }) =>
    subscriptionById(state, path.subscription_exposed_id ?? ''),
  'POST /v1/subscriptions/{subscription_exposed_id}': updateSubscription,
  'DELETE /v1/subscriptions/{subscription_exposed_id}': (context) => {
    const subscription = subscriptionById(context.state, context.path.subscription_exposed_id ?? '');
    if (subscription.status === 'canceled')
      throw invalidRequest(`No such subscription: '${subscription.id}'`, 'id', 'resource_missing');
    endSubscription(subscription, context.time.nowSeconds(), context.events, {
      requestId: context.requestId,
      idempotencyKey: context.idempotencyKey,
    });
    return subscription;
  },
};
