import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, listen } from '../../infra/local/http-util';
import { type StripeStandIn, startStripeStandIn } from '../../infra/local/stripe/index';
import { SERVED_OPERATIONS } from '../../infra/local/stripe/operations';
import { componentProblems, contractProblems, STRIPE_SPEC_SOURCE } from '../support/stripe-contract';

const WEBHOOK_SECRET = 'whsec_stand_in_test_secret';
const DAY = 86_400;

/** A webhook endpoint that keeps what it received and answers 500 to the first `failFirst` posts. */
interface Receiver {
  readonly url: string;
  readonly received: Array<{ readonly body: string; readonly signature: string }>;
  failFirst: number;
  readonly server: Server;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', received: [], failFirst: 0, server: createServer() };
  receiver.server.on('request', (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (receiver.failFirst > 0) {
        receiver.failFirst -= 1;
        res.writeHead(500).end();
        return;
      }
      receiver.received.push({
        body: Buffer.concat(chunks).toString('utf8'),
        signature: String(req.headers['stripe-signature']),
      });
      res.writeHead(200).end();
    });
  });
  await listen(receiver.server, 0);
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/billing/webhook`,
  });
}

let standIn: StripeStandIn;
let receiver: Receiver;
let stripe: Stripe;

function client(options: Stripe.StripeConfig = {}): Stripe {
  return new Stripe(standIn.secretKey, {
    host: '127.0.0.1',
    port: standIn.port,
    protocol: 'http',
    maxNetworkRetries: 0,
    ...options,
  });
}

/** The verified events of a type the receiver got, in arrival order. */
function receivedEvents<T extends Stripe.Event['type']>(type: T): Array<Extract<Stripe.Event, { type: T }>> {
  return receiver.received
    .filter(({ body }) => (JSON.parse(body) as { object: string }).object === 'event')
    .map(({ body, signature }) => stripe.webhooks.constructEvent(body, signature, WEBHOOK_SECRET))
    .filter((event): event is Extract<Stripe.Event, { type: T }> => event.type === type);
}

beforeAll(async () => {
  receiver = await startReceiver();
  standIn = await startStripeStandIn({
    webhook: { url: receiver.url, secret: WEBHOOK_SECRET, retryDelaysMs: [50, 100] },
  });
  stripe = client();
});

afterAll(async () => {
  await standIn?.stop();
  if (receiver !== undefined) await closeServer(receiver.server);
});

async function proPrice(amount = 2900): Promise<Stripe.Price> {
  return stripe.prices.create({
    currency: 'usd',
    unit_amount: amount,
    recurring: { interval: 'month' },
    product_data: { name: 'Pro' },
  });
}

/** A customer subscribed through a completed Checkout Session, as a user paying on the page is. */
async function subscribedCustomer(
  price: Stripe.Price,
): Promise<{ customer: Stripe.Customer; subscription: Stripe.Subscription }> {
  const customer = await stripe.customers.create({ email: 'owner@example.com' });
  const session = await stripe.checkout.sessions.create({
    mode: 'subscription',
    customer: customer.id,
    line_items: [{ price: price.id, quantity: 1 }],
    success_url: 'http://127.0.0.1/done?session={CHECKOUT_SESSION_ID}',
  });
  const paid = await fetch(session.url ?? '', {
    method: 'POST',
    body: new URLSearchParams({ card: '4242424242424242' }),
    redirect: 'manual',
  });
  expect(paid.status).toBe(303);
  const completed = await stripe.checkout.sessions.retrieve(session.id);
  return { customer, subscription: await stripe.subscriptions.retrieve(completed.subscription as string) };
}

describe('customers and prices', () => {
  it('creates and retrieves them; an unknown id is a 404 resource_missing', async () => {
    const customer = await stripe.customers.create({
      email: 'a@example.com',
      metadata: { accountId: 'acc_1' },
    });
    expect(await stripe.customers.retrieve(customer.id)).toMatchObject({
      id: customer.id,
      email: 'a@example.com',
      metadata: { accountId: 'acc_1' },
    });
    const product = await stripe.products.create({ name: 'Team' });
    const price = await stripe.prices.create({
      currency: 'eur',
      unit_amount: 500,
      recurring: { interval: 'year' },
      product: product.id,
    });
    expect(await stripe.prices.retrieve(price.id)).toMatchObject({
      product: product.id,
      recurring: { interval: 'year' },
    });
    const missing = await stripe.customers.retrieve('cus_missing').catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'id' });
  });

  it('refuses another API key', async () => {
    const other = new Stripe('sk_test_someone_else', {
      host: '127.0.0.1',
      port: standIn.port,
      protocol: 'http',
      maxNetworkRetries: 0,
    });
    await expect(other.customers.create({})).rejects.toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
  });
});

describe('Checkout in subscription mode', () => {
  it('serves a hosted page; a declined card leaves the session open, the test card completes it', async () => {
    const price = await proPrice();
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer_email: 'new@example.com',
      line_items: [{ price: price.id, quantity: 1 }],
      success_url: 'http://127.0.0.1/done?session={CHECKOUT_SESSION_ID}',
      subscription_data: { metadata: { accountId: 'acc_42' } },
    });
    expect(session).toMatchObject({ status: 'open', mode: 'subscription', payment_status: 'unpaid' });
    const page = await fetch(session.url ?? '');
    expect(await page.text()).toContain('name="card"');
    const declined = await fetch(session.url ?? '', {
      method: 'POST',
      body: new URLSearchParams({ card: '4000000000000002' }),
    });
    expect(declined.status).toBe(402);
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
    const paid = await fetch(session.url ?? '', {
      method: 'POST',
      body: new URLSearchParams({ card: '4242424242424242' }),
      redirect: 'manual',
    });
    expect(paid.headers.get('location')).toBe(`http://127.0.0.1/done?session=${session.id}`);
    const completed = await stripe.checkout.sessions.retrieve(session.id);
    expect(completed).toMatchObject({ status: 'complete', payment_status: 'paid' });
    const subscription = await stripe.subscriptions.retrieve(completed.subscription as string);
    expect(subscription).toMatchObject({
      status: 'active',
      customer: completed.customer,
      metadata: { accountId: 'acc_42' },
    });
    expect(subscription.items.data[0]?.price.id).toBe(price.id);
    expect(subscription.items.data[0]?.current_period_end).toBeGreaterThan(standIn.nowSeconds() + 27 * DAY);
    await standIn.webhooksIdle();
    expect(receivedEvents('checkout.session.completed').map((event) => event.data.object.id)).toContain(
      session.id,
    );
    expect(receivedEvents('customer.subscription.created').map((event) => event.data.object.id)).toContain(
      subscription.id,
    );
  });
});

describe('signed webhook delivery', () => {
  it('signs as constructEvent verifies; a wrong secret or an altered body fails', async () => {
    await subscribedCustomer(await proPrice());
    await standIn.webhooksIdle();
    const { body, signature } = receiver.received.at(-1) ?? { body: '', signature: '' };
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const event = stripe.webhooks.constructEvent(body, signature, WEBHOOK_SECRET);
    expect((await stripe.events.retrieve(event.id)).type).toBe(event.type);
    expect(() => stripe.webhooks.constructEvent(body, signature, 'whsec_wrong')).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
    expect(() => stripe.webhooks.constructEvent(`${body} `, signature, WEBHOOK_SECRET)).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
  });

  it('retries an endpoint that answers 500 until it takes the event', async () => {
    receiver.failFirst = 1;
    const before = receiver.received.length;
    const customer = await stripe.customers.create({});
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customer.id,
      line_items: [{ price: (await proPrice()).id }],
    });
    await fetch(session.url ?? '', {
      method: 'POST',
      body: new URLSearchParams({ card: '4242424242424242' }),
    });
    await standIn.webhooksIdle();
    const failed = standIn.deliveries.find((attempt) => attempt.status === 500);
    expect(failed).toBeDefined();
    const retried = standIn.deliveries.filter((attempt) => attempt.eventId === failed?.eventId);
    expect(retried.map((attempt) => [attempt.attempt, attempt.delivered])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(receiver.received.length - before).toBe(2);
  });
});

describe('subscriptions', () => {
  it('changes price, with customer.subscription.updated carrying the previous items', async () => {
    const { subscription } = await subscribedCustomer(await proPrice());
    const bigger = await proPrice(9900);
    const item = subscription.items.data[0]?.id ?? '';
    const updated = await stripe.subscriptions.update(subscription.id, {
      items: [{ id: item, price: bigger.id }],
    });
    expect(updated.items.data[0]).toMatchObject({ id: item, price: { id: bigger.id } });
    await standIn.webhooksIdle();
    const event = receivedEvents('customer.subscription.updated').find(
      (e) => e.data.object.id === subscription.id,
    );
    const previous = event?.data.previous_attributes as Partial<Stripe.Subscription> | undefined;
    expect(previous?.items?.data[0]?.price.id).toBe(subscription.items.data[0]?.price.id);
  });

  it('cancels at period end when time reaches it, and at once on delete', async () => {
    const price = await proPrice();
    const { subscription } = await subscribedCustomer(price);
    const ending = await stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true });
    expect(ending).toMatchObject({ status: 'active', cancel_at_period_end: true });
    standIn.advanceTime((subscription.items.data[0]?.current_period_end ?? 0) - standIn.nowSeconds() + 1);
    expect((await stripe.subscriptions.retrieve(subscription.id)).status).toBe('canceled');
    await standIn.webhooksIdle();
    expect(receivedEvents('customer.subscription.deleted').map((e) => e.data.object.id)).toContain(
      subscription.id,
    );
    const other = await subscribedCustomer(price);
    const canceled = await stripe.subscriptions.cancel(other.subscription.id);
    expect(canceled).toMatchObject({ status: 'canceled', ended_at: standIn.nowSeconds() });
  });

  it('goes past_due when a renewal is declined and active again when paid', async () => {
    const { customer, subscription } = await subscribedCustomer(await proPrice());
    standIn.declineRenewals(customer.id);
    standIn.advanceTime((subscription.items.data[0]?.current_period_end ?? 0) - standIn.nowSeconds() + 60);
    const overdue = await stripe.subscriptions.retrieve(subscription.id);
    expect(overdue.status).toBe('past_due');
    expect(overdue.items.data[0]?.current_period_start).toBe(subscription.items.data[0]?.current_period_end);
    standIn.declineRenewals(customer.id, false);
    standIn.settle(subscription.id);
    expect((await stripe.subscriptions.retrieve(subscription.id)).status).toBe('active');
    expect((await stripe.subscriptions.list({ customer: customer.id })).data.map((s) => s.id)).toEqual([
      subscription.id,
    ]);
  });

  it('opens a customer portal session at a URL the browser can load', async () => {
    const { customer } = await subscribedCustomer(await proPrice());
    const portal = await stripe.billingPortal.sessions.create({
      customer: customer.id,
      return_url: 'http://127.0.0.1/me',
    });
    const page = await fetch(portal.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Billing portal');
  });
});

describe('meters with daily pre-aggregation', () => {
  let meter: Stripe.Billing.Meter;
  let customer: Stripe.Customer;
  const day = (offsetDays: number) => (Math.floor(standIn.nowSeconds() / DAY) + offsetDays) * DAY;

  beforeAll(async () => {
    meter = await stripe.billing.meters.create({
      display_name: 'API calls',
      event_name: 'api_calls_daily',
      default_aggregation: { formula: 'sum' },
      event_time_window: 'day',
    });
    customer = await stripe.customers.create({});
    expect(await stripe.billing.meters.retrieve(meter.id)).toMatchObject({
      event_time_window: 'day',
      status: 'active',
    });
  });

  const push = (value: number, timestamp: number, identifier: string) =>
    stripe.billing.meterEvents.create({
      event_name: meter.event_name,
      payload: { stripe_customer_id: customer.id, value: String(value) },
      timestamp,
      identifier,
    });

  const summaries = async () =>
    (
      await stripe.billing.meters.listEventSummaries(meter.id, {
        customer: customer.id,
        start_time: day(-3),
        end_time: day(1),
        value_grouping_window: 'day',
      })
    ).data.map((summary) => [summary.start_time, summary.aggregated_value]);

  it('keeps the newest event of a day window: a re-pushed running total replaces the old one', async () => {
    await push(5, day(-1) + 3600, 'acc-1:d-1:1');
    await push(7, day(-1) + 60, 'acc-1:d-1:2');
    await push(3, day(0) + 60, 'acc-1:d0:1');
    expect(await summaries()).toEqual([
      [day(-1), 7],
      [day(0), 3],
    ]);
  });

  it('refuses a duplicate identifier within 24 hours with a 400 that says not to retry', async () => {
    const duplicate = await push(9, day(0) + 120, 'acc-1:d0:1').catch((error: unknown) => error);
    expect(duplicate).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(duplicate).toMatchObject({
      statusCode: 400,
      type: 'StripeInvalidRequestError',
      param: 'identifier',
    });
    expect((duplicate as Stripe.errors.StripeError).message).toContain(
      'An event already exists with identifier acc-1:d0:1',
    );
    expect((duplicate as Stripe.errors.StripeError).headers?.['stripe-should-retry']).toBe('false');
    expect(await summaries()).toContainEqual([day(0), 3]);
  });

  it('refuses timestamps over 35 days old or over 5 minutes ahead', async () => {
    const old = await push(1, standIn.nowSeconds() - 35 * DAY - 60, 'old').catch((error: unknown) => error);
    expect(old).toMatchObject({ statusCode: 400, code: 'timestamp_too_far_in_past', param: 'timestamp' });
    const ahead = await push(1, standIn.nowSeconds() + 6 * 60, 'ahead').catch((error: unknown) => error);
    expect(ahead).toMatchObject({ statusCode: 400, code: 'timestamp_in_future', param: 'timestamp' });
    await expect(push(1, standIn.nowSeconds() + 4 * 60, 'soon')).resolves.toMatchObject({
      identifier: 'soon',
    });
  });

  it('accepts an identifier again once 24 hours have passed', async () => {
    standIn.advanceTime(DAY + 1);
    await expect(push(4, standIn.nowSeconds() - 60, 'acc-1:d0:1')).resolves.toMatchObject({
      identifier: 'acc-1:d0:1',
    });
  });

  it('reports asynchronous meter errors as a v1.billing.meter.error_report_triggered thin event', async () => {
    await stripe.billing.meterEvents.create({
      event_name: meter.event_name,
      payload: { stripe_customer_id: 'cus_nobody', value: '1' },
      identifier: 'for-nobody',
    });
    const eventId = standIn.emitMeterErrorReport(meter.id);
    await standIn.webhooksIdle();
    const delivered = receiver.received.find(({ body }) => body.includes(eventId));
    const notification = stripe.parseEventNotification(
      delivered?.body ?? '',
      delivered?.signature ?? '',
      WEBHOOK_SECRET,
    );
    expect(notification.type).toBe('v1.billing.meter.error_report_triggered');
    if (notification.type !== 'v1.billing.meter.error_report_triggered') return;
    const event = await notification.fetchEvent();
    expect(event.data.reason.error_types[0]).toMatchObject({
      code: 'meter_event_customer_not_found',
      error_count: 1,
    });
    expect(event.data.reason.error_types[0]?.sample_errors[0]?.request.identifier).toBe('for-nobody');
  });
});

describe('invoices at renewal', () => {
  it('announces the renewal 3 days ahead, opens a draft for the period that ended, finalizes it an hour later with late usage', async () => {
    const meter = await stripe.billing.meters.create({
      display_name: 'Invoiced calls',
      event_name: 'invoiced_calls',
      default_aggregation: { formula: 'sum' },
      customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
      value_settings: { event_payload_key: 'value' },
      event_time_window: 'day',
    });
    const price = await stripe.prices.create({
      currency: 'usd',
      unit_amount: 2,
      recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
      product_data: { name: 'Metered' },
    });
    const { customer, subscription } = await subscribedCustomer(price);
    const start = subscription.items.data[0]?.current_period_start ?? 0;
    const end = subscription.items.data[0]?.current_period_end ?? 0;
    const push = (value: number, timestamp: number, identifier: string) =>
      stripe.billing.meterEvents.create({
        event_name: meter.event_name,
        payload: { stripe_customer_id: customer.id, value: String(value) },
        timestamp,
        identifier,
      });
    await push(40, standIn.nowSeconds(), `${customer.id}:first-day`);
    const mine = (type: 'invoice.upcoming' | 'invoice.created' | 'invoice.finalized') =>
      receivedEvents(type).filter((event) => event.data.object.customer === customer.id);

    standIn.advanceTime(end - 3 * DAY - standIn.nowSeconds() - 60);
    await standIn.webhooksIdle();
    expect(mine('invoice.upcoming')).toEqual([]);
    standIn.advanceTime(120);
    await standIn.webhooksIdle();
    const [upcoming, ...moreUpcoming] = mine('invoice.upcoming');
    expect(moreUpcoming).toEqual([]);
    // Stripe: "the received Invoice object will not have an invoice ID".
    expect(upcoming?.data.object).not.toHaveProperty('id');
    expect(upcoming?.data.object).toMatchObject({
      billing_reason: 'upcoming',
      status: 'draft',
      period_start: start,
      period_end: end,
      amount_due: 80,
    });

    // Half an hour before the period ends, or the start of its last (UTC) day if that is later: an
    // event on the last day, not in the future (Stripe refuses more than 5 minutes ahead) whatever
    // the hour the subscription began.
    const lastDay = Math.max(Math.floor((end - 1) / DAY) * DAY, end - 1800);
    standIn.advanceTime(lastDay - standIn.nowSeconds());
    await push(60, lastDay, `${customer.id}:last-day`);
    standIn.advanceTime(end + 60 - standIn.nowSeconds());
    await standIn.webhooksIdle();
    const [created, ...moreCreated] = mine('invoice.created');
    expect(moreCreated).toEqual([]);
    const invoiceId = created?.data.object.id ?? '';
    expect(created?.data.object).toMatchObject({
      id: expect.stringMatching(/^in_/),
      status: 'draft',
      billing_reason: 'subscription_cycle',
      period_start: start,
      period_end: end,
      amount_due: 200,
      parent: { subscription_details: { subscription: subscription.id } },
    });
    expect(created?.data.object.lines.data[0]).toMatchObject({ quantity: 100, period: { start, end } });
    expect((await stripe.subscriptions.retrieve(subscription.id)).latest_invoice).toBe(invoiceId);
    expect(mine('invoice.finalized')).toEqual([]);

    // The last day's running total, pushed while the invoice is a draft, is still billed (and
    // replaces the day's earlier total: daily pre-aggregation).
    await push(65, end - 1, `${customer.id}:late`);
    standIn.advanceTime(3600);
    await standIn.webhooksIdle();
    const finalized = await stripe.invoices.retrieve(invoiceId);
    expect(finalized).toMatchObject({
      status: 'open',
      amount_due: 210,
      number: expect.stringMatching(/-0001$/),
      status_transitions: { finalized_at: standIn.nowSeconds() },
    });
    expect(mine('invoice.finalized').map((event) => event.data.object)).toMatchObject([
      { id: invoiceId, status: 'open', amount_due: 210 },
    ]);
    const missing = await stripe.invoices.retrieve('in_missing').catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
  });

  it('sends invoice.upcoming as many days ahead as configured, and none for a subscription ending', async () => {
    const own = await startReceiver();
    const other = await startStripeStandIn({
      webhook: { url: own.url, secret: WEBHOOK_SECRET, retryDelaysMs: [50] },
      upcomingRenewalDays: 7,
    });
    try {
      const sdk = new Stripe(other.secretKey, { host: '127.0.0.1', port: other.port, protocol: 'http' });
      const price = await sdk.prices.create({
        currency: 'usd',
        unit_amount: 900,
        recurring: { interval: 'month' },
        product_data: { name: 'Licensed' },
      });
      const subscribe = async () => {
        const session = await sdk.checkout.sessions.create({
          mode: 'subscription',
          line_items: [{ price: price.id, quantity: 1 }],
          success_url: 'http://127.0.0.1/done',
        });
        await fetch(session.url ?? '', {
          method: 'POST',
          body: new URLSearchParams({ card: '4242424242424242' }),
          redirect: 'manual',
        });
        return sdk.subscriptions.retrieve(
          (await sdk.checkout.sessions.retrieve(session.id)).subscription as string,
        );
      };
      const renewing = await subscribe();
      const ending = await sdk.subscriptions.update((await subscribe()).id, { cancel_at_period_end: true });
      other.advanceTime(
        (renewing.items.data[0]?.current_period_end ?? 0) - other.nowSeconds() - 7 * DAY + 60,
      );
      await other.webhooksIdle();
      const upcoming = own.received
        .map(({ body }) => JSON.parse(body) as { type: string; data: { object: { subscription?: string } } })
        .filter((event) => event.type === 'invoice.upcoming');
      expect(upcoming.map((event) => event.data.object.subscription)).toEqual([renewing.id]);
      expect(ending.id).not.toBe(renewing.id);
    } finally {
      await other.stop();
      await closeServer(own.server);
    }
  });
});

describe('idempotent requests', () => {
  it('replays the first answer for the same key and parameters, and refuses other parameters', async () => {
    const first = await stripe.customers.create({ email: 'same@example.com' }, { idempotencyKey: 'key-1' });
    const again = await stripe.customers.create({ email: 'same@example.com' }, { idempotencyKey: 'key-1' });
    expect(again.id).toBe(first.id);
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    const other = await stripe.customers
      .create({ email: 'other@example.com' }, { idempotencyKey: 'key-1' })
      .catch((e: unknown) => e);
    expect(other).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
  });
});

describe('fault injection', () => {
  it('answers 500 to the next request: the SDK retries it with the same key, once, to one customer', async () => {
    standIn.injectFault({ kind: 'server_error' }, 1, 'POST /v1/customers');
    const created = await client({ maxNetworkRetries: 1 }).customers.create({ email: 'retried@example.com' });
    const answers = standIn.answers.filter((answer) => answer.route === 'POST /v1/customers').slice(-2);
    expect(answers.map((answer) => answer.status)).toEqual([500, 200]);
    expect(created.email).toBe('retried@example.com');
    standIn.injectFault({ kind: 'server_error' }, 1);
    await expect(stripe.customers.create({})).rejects.toBeInstanceOf(Stripe.errors.StripeAPIError);
  });

  it('rate limits with 429 and Retry-After', async () => {
    standIn.injectFault({ kind: 'rate_limit', retryAfterSeconds: 2 });
    const limited = await stripe.customers.create({}).catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect((limited as Stripe.errors.StripeError).headers?.['retry-after']).toBe('2');
  });

  it('hangs past the SDK timeout without running the operation', async () => {
    const meter = await stripe.billing.meters.create({
      display_name: 'hang',
      event_name: 'hang_calls',
      default_aggregation: { formula: 'sum' },
    });
    standIn.injectFault({ kind: 'hang' }, 1, 'POST /v1/billing/meter_events');
    const event = {
      event_name: meter.event_name,
      payload: { stripe_customer_id: 'cus_x', value: '1' },
      identifier: 'hung-once',
    };
    const hung = await client({ timeout: 300 })
      .billing.meterEvents.create(event)
      .catch((error: unknown) => error);
    expect(hung).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    // The hung request never reached the operation: the same identifier is still free.
    await expect(stripe.billing.meterEvents.create(event)).resolves.toMatchObject({
      identifier: 'hung-once',
    });
  });
});

describe("fidelity against Stripe's published OpenAPI document", () => {
  it('can fail: an answer missing required fields does not validate', () => {
    expect(contractProblems('POST /v1/customers', 200, { id: 'cus_1' })).not.toEqual([]);
    expect(componentProblems('subscription', { id: 'sub_1', object: 'subscription' })).not.toEqual([]);
    expect(componentProblems('invoice', { object: 'invoice', status: 'draft' })).not.toEqual([]);
  });

  it('every answer given in these tests validates against its operation’s schema', async () => {
    await standIn.webhooksIdle();
    const v1 = standIn.answers.filter((answer) => !answer.route.includes(' /v2/'));
    const served = SERVED_OPERATIONS.map(({ method, path }) => `${method.toUpperCase()} ${path}`);
    expect(new Set(v1.map((answer) => answer.route))).toEqual(new Set(served));
    const problems = v1.flatMap((answer) => contractProblems(answer.route, answer.status, answer.body));
    expect(problems).toEqual([]);
    expect(STRIPE_SPEC_SOURCE.commit).toMatch(/^[0-9a-f]{40}$/);
  });

  it('every webhook event, and the object it carries, validates against Stripe’s schemas', () => {
    const events = receiver.received.map(
      ({ body }) => JSON.parse(body) as { object: string; data: { object: { object: string } } },
    );
    const snapshots = events.filter((event) => event.object === 'event');
    expect(snapshots.length).toBeGreaterThan(5);
    const problems = snapshots.flatMap((event) => [
      ...componentProblems('event', event),
      ...componentProblems(event.data.object.object, event.data.object),
    ]);
    expect(problems).toEqual([]);
  });
});
