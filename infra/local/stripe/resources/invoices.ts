import { HOUR_SECONDS } from '../clock';
import { noSuch } from '../errors';
import type { EventPublisher } from '../events';
import { newId } from '../ids';
import type { Routes } from '../router';
import type { StandInState, StripeObject } from '../state';
import { aggregate, countedEvents } from './meter-events';
import type { Meter } from './meters';
import { periodEnd } from './periods';
import type { Subscription } from './subscriptions';

/** Stripe: subscription invoices stay drafts "approximately 1 hour" before they are finalized. */
export const DRAFT_SECONDS = HOUR_SECONDS;

/** The fields the lifecycle reads and writes; the rest is answered as stored. */
export interface Invoice extends StripeObject {
  customer: string;
  status: 'draft' | 'open';
  created: number;
  period_start: number;
  period_end: number;
  subscription: string;
}

type Item = Subscription['items']['data'][number];

/**
 * An item's line on the invoice that closes [start, end): a metered price bills the meter's
 * aggregated usage in that period (in arrears), a licensed one the next period (in advance).
 */
function line(state: StandInState, subscription: Subscription, item: Item, start: number, end: number) {
  const price = item.price as Item['price'] & { unit_amount: number | null; recurring: { meter?: string } };
  const meter = price.recurring.meter === undefined ? undefined : state.meters.get(price.recurring.meter);
  let quantity = 1;
  let period = { start: end, end: periodEnd(end, price.recurring.interval, price.recurring.interval_count) };
  if (meter !== undefined) {
    const counted = countedEvents(state, meter as Meter, subscription.customer).filter(
      (event) => event.answer.timestamp >= start && event.answer.timestamp < end,
    );
    quantity = aggregate(meter as Meter, counted);
    period = { start, end };
  }
  return {
    id: newId('il'),
    object: 'line_item',
    amount: quantity * (price.unit_amount ?? 0),
    amount_excluding_tax: quantity * (price.unit_amount ?? 0),
    currency: price.currency,
    description: null,
    discount_amounts: [],
    discountable: true,
    discounts: [],
    livemode: false,
    metadata: {},
    period,
    price,
    proration: false,
    proration_details: { credited_items: null },
    quantity,
    subscription: subscription.id,
    subscription_item: item.id,
    tax_amounts: [],
    tax_rates: [],
    type: 'subscription',
    unit_amount_excluding_tax: String(price.unit_amount ?? 0),
  };
}

/** Lines and the totals that follow from them; recomputed at finalization, when late usage counts. */
function billed(state: StandInState, invoice: Invoice, subscription: Subscription) {
  const { period_start: start, period_end: end } = invoice;
  const data = subscription.items.data.map((item) => line(state, subscription, item, start, end));
  const total = data.reduce((sum, item) => sum + item.amount, 0);
  const url = invoice.id === undefined ? '/v1/invoices/upcoming/lines' : `/v1/invoices/${invoice.id}/lines`;
  return {
    lines: { object: 'list', data, has_more: false, url },
    ...{ subtotal: total, subtotal_excluding_tax: total, total, total_excluding_tax: total },
    ...{ amount_due: total, amount_remaining: total },
  };
}

/** A draft invoice for the subscription's period [start, end), as Stripe opens one at a renewal. */
function draftInvoice(
  state: StandInState,
  subscription: Subscription,
  start: number,
  end: number,
  billingReason: 'subscription_cycle' | 'upcoming',
): Invoice {
  const invoice = {
    ...(billingReason === 'upcoming' ? {} : { id: newId('in') }),
    object: 'invoice',
    account_country: 'US',
    account_name: 'Tollgate (Stripe stand-in)',
    account_tax_ids: null,
    amount_paid: 0,
    amount_shipping: 0,
    application: null,
    application_fee_amount: null,
    attempt_count: 0,
    attempted: false,
    auto_advance: true,
    automatic_tax: { enabled: false, liability: null, status: null },
    billing_reason: billingReason,
    charge: null,
    collection_method: 'charge_automatically',
    created: end,
    currency: subscription.currency,
    custom_fields: null,
    customer: subscription.customer,
    customer_address: null,
    customer_email: (state.customers.get(subscription.customer)?.email as string | null | undefined) ?? null,
    customer_name: null,
    customer_phone: null,
    customer_shipping: null,
    customer_tax_exempt: 'none',
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discount: null,
    discounts: [],
    due_date: null,
    effective_at: null,
    ending_balance: null,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: null,
    invoice_pdf: null,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    livemode: false,
    metadata: {},
    next_payment_attempt: null,
    number: null,
    on_behalf_of: null,
    paid: false,
    paid_out_of_band: false,
    // API versions since 2025-03-31 name the subscription here; the 2024 schema in `subscription`.
    parent: {
      type: 'subscription_details',
      quote_details: null,
      subscription_details: { metadata: subscription.metadata, subscription: subscription.id },
    },
    payment_intent: null,
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: end,
    period_start: start,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    quote: null,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: 'draft',
    status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    subscription: subscription.id,
    subscription_details: { metadata: subscription.metadata },
    tax: null,
    test_clock: null,
    total_discount_amounts: [],
    total_tax_amounts: [],
    transfer_data: null,
    webhooks_delivered_at: null,
  } as unknown as Invoice;
  return Object.assign(invoice, billed(state, invoice, subscription));
}

/** At a renewal: the draft invoice of the period that ended, `invoice.created`; its id. */
export function openRenewalInvoice(
  state: StandInState,
  events: EventPublisher,
  subscription: Subscription,
  start: number,
  end: number,
): string {
  const invoice = draftInvoice(state, subscription, start, end, 'subscription_cycle');
  state.invoices.set(invoice.id, invoice);
  events.publish('invoice.created', invoice);
  return invoice.id;
}

/**
 * `invoice.upcoming` for the renewal at the end of the current period: a preview of the invoice
 * it will open (usage so far), which, as Stripe documents, has no id.
 */
export function announceUpcomingInvoice(
  state: StandInState,
  events: EventPublisher,
  subscription: Subscription,
): void {
  const preview = draftInvoice(
    state,
    subscription,
    subscription.current_period_start,
    subscription.current_period_end,
    'upcoming',
  );
  events.publish('invoice.upcoming', preview);
}

/** When a draft is finalized: an hour after it was created. */
export function finalizesAt(invoice: Invoice): number {
  return invoice.created + DRAFT_SECONDS;
}

/** The draft finalized: `open`, numbered, its usage lines recomputed; `invoice.finalized`. */
export function finalizeInvoice(
  state: StandInState,
  events: EventPublisher,
  invoice: Invoice,
  nowSeconds: number,
): void {
  const subscription = state.subscriptions.get(invoice.subscription) as Subscription;
  const customer = state.customers.get(invoice.customer);
  const issued = [...state.invoices.values()].filter(
    (other) => other.customer === invoice.customer && other.number !== null,
  ).length;
  Object.assign(invoice, billed(state, invoice, subscription), {
    status: 'open',
    effective_at: nowSeconds,
    number: `${String(customer?.invoice_prefix ?? 'STANDIN')}-${String(issued + 1).padStart(4, '0')}`,
    status_transitions: { ...(invoice.status_transitions as object), finalized_at: nowSeconds },
  });
  events.publish('invoice.finalized', invoice);
}

export function invoiceById(state: StandInState, id: string): Invoice {
  const invoice = state.invoices.get(id);
  if (invoice === undefined) throw noSuch('invoice', id, 'invoice');
  return invoice as Invoice;
}

export const invoiceRoutes: Routes = {
  'GET /v1/invoices/{invoice}': ({ path, state }) => invoiceById(state, path.invoice ?? ''),
};
