import { invalidRequest, missingParam, noSuch } from '../errors';
import type { EventPublisher } from '../events';
import { newId } from '../ids';
import { ParamReader } from '../params';
import type { RequestContext, Routes } from '../router';
import type { StandInState, StripeObject } from '../state';
import { priceById } from './catalog';
import { customerById, newCustomer } from './customers';
import { newSubscription } from './subscriptions';

/** Stripe's test card that always succeeds: the only card the hosted page accepts. */
export const SUCCEEDING_TEST_CARD = '4242424242424242';
const SESSION_LIFETIME_SECONDS = 24 * 3600;

interface LineItem {
  readonly price: StripeObject;
  readonly quantity: number;
}

function lineItems(context: RequestContext): LineItem[] {
  const given = context.params.list('line_items');
  if (given.length === 0) throw missingParam('line_items');
  return given.map((item, index) => {
    const price = priceById(context.state, item.string('price'), `line_items[${index}][price]`);
    if (price.type !== 'recurring') {
      throw invalidRequest(
        'In subscription mode every line item needs a recurring price.',
        `line_items[${index}][price]`,
      );
    }
    return { price, quantity: item.optionalInteger('quantity') ?? 1 };
  });
}

function newSession(context: RequestContext, items: readonly LineItem[], id: string): StripeObject {
  const { params, time } = context;
  const customer = params.optionalString('customer');
  if (customer !== undefined) customerById(context.state, customer);
  const total = items.reduce((sum, item) => sum + Number(item.price.unit_amount ?? 0) * item.quantity, 0);
  const created = time.nowSeconds();
  return {
    id,
    object: 'checkout.session',
    after_expiration: null,
    allow_promotion_codes: null,
    amount_subtotal: total,
    amount_total: total,
    automatic_tax: { enabled: false, liability: null, status: null },
    billing_address_collection: null,
    cancel_url: params.optionalString('cancel_url') ?? null,
    client_reference_id: params.optionalString('client_reference_id') ?? null,
    client_secret: null,
    consent: null,
    consent_collection: null,
    created,
    currency: items[0]?.price.currency ?? null,
    custom_fields: [],
    custom_text: {
      after_submit: null,
      shipping_address: null,
      submit: null,
      terms_of_service_acceptance: null,
    },
    customer: customer ?? null,
    customer_creation: null,
    customer_details: null,
    customer_email: params.optionalString('customer_email') ?? null,
    expires_at: created + SESSION_LIFETIME_SECONDS,
    invoice: null,
    invoice_creation: null,
    livemode: false,
    locale: null,
    metadata: params.metadata() ?? {},
    mode: 'subscription',
    payment_intent: null,
    payment_link: null,
    payment_method_collection: 'always',
    payment_method_types: ['card'],
    payment_status: 'unpaid',
    phone_number_collection: { enabled: false },
    recovered_from: null,
    setup_intent: null,
    shipping_address_collection: null,
    shipping_cost: null,
    shipping_details: null,
    shipping_options: [],
    status: 'open',
    submit_type: null,
    subscription: null,
    success_url: params.optionalString('success_url') ?? null,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted',
    url: `${context.baseUrl}/checkout/pay/${id}`,
  };
}

/** What completing a session needs besides the session, kept until the hosted page is submitted. */
interface PendingCheckout {
  readonly items: readonly LineItem[];
  readonly subscriptionMetadata: Record<string, string>;
}

const pending = new WeakMap<StripeObject, PendingCheckout>();

function createSession(context: RequestContext): StripeObject {
  const mode = context.params.string('mode');
  if (mode !== 'subscription') throw invalidRequest('The stand-in models mode=subscription only.', 'mode');
  const items = lineItems(context);
  const session = newSession(context, items, newId('cs_test'));
  const subscriptionMetadata = context.params.optionalObject('subscription_data')?.metadata() ?? {};
  pending.set(session, { items, subscriptionMetadata });
  context.state.checkoutSessions.set(session.id, session);
  return session;
}

/**
 * Completes an open session as paying on its hosted page does: the customer (created if the
 * session named none), the subscription, `customer.subscription.created`, `checkout.session.completed`.
 */
export function completeSession(
  session: StripeObject,
  state: StandInState,
  events: EventPublisher,
  nowSeconds: number,
): void {
  const { items, subscriptionMetadata } = pending.get(session) ?? { items: [], subscriptionMetadata: {} };
  let customerId = session.customer as string | null;
  if (customerId === null) {
    const customer = newCustomer(
      new ParamReader({ email: String(session.customer_email ?? '') }),
      nowSeconds,
    );
    state.customers.set(customer.id, customer);
    events.publish('customer.created', customer);
    customerId = customer.id;
  }
  const first = items[0];
  if (first === undefined) throw invalidRequest('This Checkout Session has no line items.');
  const subscription = newSubscription(customerId, first.price, nowSeconds);
  subscription.metadata = { ...subscriptionMetadata };
  state.subscriptions.set(subscription.id, subscription);
  const email = (state.customers.get(customerId)?.email as string | null) ?? session.customer_email ?? null;
  Object.assign(session, {
    customer: customerId,
    customer_details: { address: null, email, name: null, phone: null, tax_exempt: 'none', tax_ids: [] },
    payment_status: 'paid',
    status: 'complete',
    subscription: subscription.id,
  });
  events.publish('customer.subscription.created', subscription);
  events.publish('checkout.session.completed', session);
}

export const checkoutRoutes: Routes = {
  'POST /v1/checkout/sessions': createSession,
  'GET /v1/checkout/sessions/{session}': ({ path, state }) => {
    const session = state.checkoutSessions.get(path.session ?? '');
    if (session === undefined) throw noSuch('checkout.session', path.session ?? '', 'session');
    return session;
  },
};
