import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { serve } from '@hono/node-server';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_PAST_DUE_GRACE_MS } from '../../contracts/billing';
import { ENV } from '../../contracts/config';
import { BillingMetric } from '../../contracts/metric-names';
import { closeServer, listen } from '../../infra/local/http-util';
import { type StripeStandIn, signatureHeader, startStripeStandIn } from '../../infra/local/stripe/index';
import { PlanStore } from '../../services/accounts/plan-store';
import { BillingAccounts } from '../../services/billing/billing-accounts';
import { fixedSecrets } from '../../services/billing/secrets';
import { BillingSessions } from '../../services/billing/sessions';
import { stripeClient } from '../../services/billing/stripe-client';
import { composeBillingJobs } from '../../services/billing-jobs/compose';
import { loadBillingJobsConfig } from '../../services/billing-jobs/config';
import { documentClient } from '../../services/platform/aws-clients';
import type { MetricsRecorder } from '../../services/platform/metrics';
import { recordFigures } from '../support/figures';
import { signUpAndSignIn, userApi } from '../support/local-stack';
import { eventually } from '../support/wait';

// Subscriptions in → plans, through the billing webhook as Stripe calls it: the Stripe stand-in
// signs and delivers its events, through a relay this test controls (pass them on, hold them and
// release them in another order, replay one), to the billing-jobs webhook app composed as the
// Lambda handler composes it, over the test stack's DynamoDB Local.

const WEBHOOK_SECRET = 'whsec_billing_webhook_test';
const env = inject('env');
const aws = inject('aws');
const dynamo = documentClient(aws);
const billingTable = env[ENV.billingTable] ?? (env[ENV.usageTable] as string).replace(/-usage$/, '-billing');
const plans = new PlanStore({
  client: dynamo,
  plansTable: env[ENV.plansTable] as string,
  accountsTable: env[ENV.accountsTable] as string,
});
const billingAccounts = new BillingAccounts({ client: dynamo, table: billingTable });

/** The jobs' clock: the stand-in's test-clock moves are mirrored here, so a grace can end. */
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };
const metricTotals = new Map<string, number>();
const metrics: MetricsRecorder = {
  addMetric: (name, _unit, value) => metricTotals.set(name, (metricTotals.get(name) ?? 0) + value),
};

let standIn: StripeStandIn;
let stripe: Stripe;
let jobs: ReturnType<typeof composeBillingJobs>;
let webhookUrl: string;
let webhookServer: ReturnType<typeof serve>;

/** What the relay does with Stripe's deliveries: pass them on at once, or hold them for the test. */
let holding = false;
const held: Array<{ body: string; signature: string }> = [];
/** Every event the relay passed on, by type: what a replay re-sends. */
const passed: Stripe.Event[] = [];
const relay = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', async () => {
    const delivery = {
      body: Buffer.concat(chunks).toString('utf8'),
      signature: String(req.headers['stripe-signature']),
    };
    if (holding) {
      held.push(delivery);
      res.writeHead(200).end();
      return;
    }
    const answer = await post(delivery.body, delivery.signature);
    passed.push(JSON.parse(delivery.body) as Stripe.Event);
    res.writeHead(answer.status).end(await answer.text());
  });
});

const post = (body: string, signature?: string) =>
  fetch(webhookUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature ? { 'stripe-signature': signature } : {}) },
    body,
  });
const signNow = (body: string, secret = WEBHOOK_SECRET) =>
  signatureHeader(body, secret, Math.floor(Date.now() / 1000));

let proPlanId: string;
let plusPlanId: string;
let proPrice: Stripe.Price;
let plusPrice: Stripe.Price;

beforeAll(async () => {
  await listen(relay, 0);
  const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}/billing/webhook`;
  standIn = await startStripeStandIn({
    webhook: { url: relayUrl, secret: WEBHOOK_SECRET, retryDelaysMs: [50, 100, 200] },
  });
  stripe = stripeClient(standIn.secretKey, { apiUrl: standIn.url });
  const meter = await stripe.billing.meters.create({
    display_name: 'Tollgate requests',
    event_name: `tollgate_webhook_${randomUUID().slice(0, 8)}`,
    default_aggregation: { formula: 'sum' },
    event_time_window: 'day',
  });
  const config = loadBillingJobsConfig({
    ...env,
    [ENV.billingTable]: billingTable,
    [ENV.stripeSecretKeyArn]: 'arn:aws:secretsmanager:local:000000000000:secret:stripe-key',
    [ENV.stripeWebhookSecretArn]: 'arn:aws:secretsmanager:local:000000000000:secret:stripe-webhook',
    [ENV.stripeApiUrl]: standIn.url,
    [ENV.billingMeterId]: meter.id,
    [ENV.billingMeterEvent]: meter.event_name,
  });
  jobs = composeBillingJobs(config, {
    aws,
    clock,
    metrics,
    logger: new Logger({ serviceName: 'billing-webhook-test', logLevel: 'SILENT' }),
    secrets: fixedSecrets({ stripeSecretKey: standIn.secretKey, webhookSecret: WEBHOOK_SECRET }),
  });
  webhookServer = serve({ fetch: jobs.webhook.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => webhookServer.once('listening', resolve));
  webhookUrl = `http://127.0.0.1:${(webhookServer.address() as AddressInfo).port}/billing/webhook`;

  const suffix = randomUUID().slice(0, 6);
  const price = (amount: number, name: string) =>
    stripe.prices.create({
      currency: 'usd',
      unit_amount: amount,
      recurring: { interval: 'month' },
      product_data: { name },
    });
  proPrice = await price(2900, 'Pro');
  plusPrice = await price(9900, 'Plus');
  proPlanId = `pro-${suffix}`;
  plusPlanId = `plus-${suffix}`;
  await plans.putPlan(
    proPlanId,
    { name: 'Pro', quota: { requests: 100_000, period: 'month' }, billing: { priceId: proPrice.id } },
    new Date(),
  );
  await plans.putPlan(plusPlanId, { name: 'Plus', billing: { priceId: plusPrice.id } }, new Date());
});

afterAll(async () => {
  await standIn?.stop();
  await closeServer(relay);
  if (webhookServer) await closeServer(webhookServer as unknown as import('node:http').Server);
});

/** A new account that bought pro through Checkout, as the page does it. */
async function subscribedAccount(label: string) {
  const owner = await signUpAndSignIn(label);
  const accountId = ((await userApi(owner.idToken, 'GET', '/me')).body as { userId: string }).userId;
  const sessions = new BillingSessions({
    stripe,
    accounts: billingAccounts,
    plans,
    returnUrl: 'http://127.0.0.1:5173/',
  });
  const checkout = await sessions.checkout({ accountId, email: owner.email }, proPlanId);
  if (!checkout.ok) throw new Error(`checkout refused: ${checkout.reason}`);
  const paid = await fetch(checkout.url, {
    method: 'POST',
    body: new URLSearchParams({ card: '4242424242424242' }),
    redirect: 'manual',
  });
  expect(paid.status).toBe(303);
  await eventually(async () => (await standing(accountId))?.planId === proPlanId, 15_000, 100);
  const record = await billingAccounts.customer(accountId);
  const subscription = await stripe.subscriptions.retrieve(record?.subscription?.subscriptionId as string);
  return { accountId, customerId: record?.customerId as string, subscription };
}

const standing = (accountId: string) => plans.standing(accountId, { consistent: true });

describe('the billing webhook: Stripe subscriptions set the plan and standing', () => {
  const figures: Record<string, unknown> = {};

  it("checkout completed → the account is on the price's plan, the transition recorded with its event", async () => {
    const started = Date.now();
    const { accountId, customerId } = await subscribedAccount('bill-checkout');
    figures.checkoutToPlanMs = Date.now() - started;
    expect(customerId).toMatch(/^cus_/);
    const transitions = await billingAccounts.transitions(accountId);
    expect(transitions.at(-1)).toMatchObject({
      from: { planId: 'default' },
      to: { planId: proPlanId, status: 'active' },
    });
    expect(transitions.at(-1)?.eventId).toMatch(/^evt_/);
    // A second checkout while subscribed goes to the portal instead.
    const sessions = new BillingSessions({
      stripe,
      accounts: billingAccounts,
      plans,
      returnUrl: 'http://127.0.0.1:5173/',
    });
    expect(await sessions.checkout({ accountId }, plusPlanId)).toEqual({
      ok: false,
      reason: 'already_subscribed',
    });
    expect(await sessions.portal(accountId)).toMatchObject({ ok: true });
  });

  it('a forged or unsigned delivery is 400 and changes nothing; a replay is 200 and changes nothing', async () => {
    const { accountId, subscription } = await subscribedAccount('bill-forged');
    const forged = JSON.stringify({
      id: `evt_forged${randomUUID().slice(0, 8)}`,
      object: 'event',
      type: 'customer.subscription.deleted',
      created: Math.floor(Date.now() / 1000),
      data: { object: { ...subscription, status: 'canceled' } },
    });
    const rejectedBefore = metricTotals.get(BillingMetric.webhookRejected) ?? 0;
    const forgedStatuses: number[] = [];
    for (const signature of [signNow(forged, 'whsec_not_the_secret'), undefined, 't=1,v1=00']) {
      const answer = await post(forged, signature);
      forgedStatuses.push(answer.status);
      expect(answer.status).toBe(400);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
    }
    expect(metricTotals.get(BillingMetric.webhookRejected)).toBe(rejectedBefore + 3);
    const afterForged = await standing(accountId);
    expect(afterForged).toMatchObject({ planId: proPlanId, status: 'active' });
    figures.forged = {
      statuses: forgedStatuses,
      planAfter: afterForged?.planId === proPlanId ? 'unchanged' : 'changed',
    };

    // Replay the real checkout event, freshly signed (what a redelivery is): handled once.
    const original = passed.find(
      (e) =>
        e.type === 'checkout.session.completed' &&
        (e.data.object as Stripe.Checkout.Session).client_reference_id === accountId,
    );
    expect(original).toBeDefined();
    const body = JSON.stringify(original);
    const transitionsBefore = (await billingAccounts.transitions(accountId)).length;
    await plans.assignPlan(accountId, plusPlanId); // an admin's change the replay must not undo
    const replayed = await post(body, signNow(body));
    expect(replayed.status).toBe(200);
    expect(await replayed.json()).toMatchObject({ duplicate: true });
    expect(await standing(accountId)).toMatchObject({ planId: plusPlanId });
    const transitionsAfter = (await billingAccounts.transitions(accountId)).length;
    expect(transitionsAfter).toBe(transitionsBefore);
    figures.replay = {
      status: replayed.status,
      planAfter: (await standing(accountId))?.planId === plusPlanId ? 'unchanged' : 'changed',
      newTransitions: transitionsAfter - transitionsBefore,
    };
  });

  it('events delivered out of order: the subscription as it is now wins, not the last to arrive', async () => {
    const { accountId, subscription } = await subscribedAccount('bill-order');
    holding = true;
    const item = subscription.items.data[0]?.id as string;
    await stripe.subscriptions.update(subscription.id, { items: [{ id: item, price: plusPrice.id }] });
    await stripe.subscriptions.cancel(subscription.id);
    await standIn.webhooksIdle();
    holding = false;
    const deliveries = held.splice(0);
    expect(deliveries.map((d) => (JSON.parse(d.body) as { type: string }).type)).toEqual([
      'customer.subscription.updated',
      'customer.subscription.deleted',
    ]);
    for (const delivery of deliveries.reverse()) {
      expect((await post(delivery.body, signNow(delivery.body))).status).toBe(200);
    }
    // The late `updated` (to plus) did not bring the canceled subscription's account back to plus.
    expect(await standing(accountId)).toMatchObject({ planId: 'default', status: 'active' });
    expect((await billingAccounts.customer(accountId))?.subscription?.status).toBe('canceled');
    figures.outOfOrder = {
      delivered: deliveries.map((d) =>
        (JSON.parse(d.body) as { type: string }).type.replace('customer.subscription.', ''),
      ),
      finalPlan: (await standing(accountId))?.planId,
    };
  });

  it('canceled at period end → the default plan when the period ends, not before', async () => {
    const { accountId, subscription } = await subscribedAccount('bill-cancel');
    await stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true });
    await standIn.webhooksIdle();
    expect(await standing(accountId)).toMatchObject({ planId: proPlanId });
    expect((await billingAccounts.standing(accountId))?.subscription?.cancelAtPeriodEnd).toBe(true);
    const beforeEnd = (await standing(accountId))?.planId;
    standIn.advanceTime((subscription.items.data[0]?.current_period_end ?? 0) - standIn.nowSeconds() + 1);
    await eventually(async () => (await standing(accountId))?.planId === 'default', 15_000, 100);
    figures.cancelAtPeriodEnd = {
      beforeEnd: beforeEnd === proPlanId ? 'pro' : beforeEnd,
      afterEnd: (await standing(accountId))?.planId,
    };
  });

  it('past_due → suspended after the grace (not before), paid again → active on its plan', async () => {
    const { accountId, customerId, subscription } = await subscribedAccount('bill-pastdue');
    standIn.declineRenewals(customerId);
    standIn.advanceTime((subscription.items.data[0]?.current_period_end ?? 0) - standIn.nowSeconds() + 60);
    await eventually(
      async () => (await billingAccounts.customer(accountId))?.subscription?.status === 'past_due',
      15_000,
      100,
    );
    await jobs.runJob('export');
    const withinGrace = (await standing(accountId))?.status;
    expect(await standing(accountId)).toMatchObject({ planId: proPlanId, status: 'active' });
    offsetMs = DEFAULT_PAST_DUE_GRACE_MS + 60_000;
    try {
      await jobs.runJob('export');
      const afterGrace = (await standing(accountId))?.status;
      expect(await standing(accountId)).toMatchObject({ planId: proPlanId, status: 'suspended' });
      standIn.declineRenewals(customerId, false);
      standIn.settle(subscription.id);
      await eventually(async () => (await standing(accountId))?.status === 'active', 15_000, 100);
      expect(await standing(accountId)).toMatchObject({ planId: proPlanId });
      const path = (await billingAccounts.transitions(accountId)).map((t) => t.to.status);
      expect(path.slice(-2)).toEqual(['suspended', 'active']);
      figures.pastDue = { withinGrace, afterGrace, afterPaid: (await standing(accountId))?.status };
    } finally {
      offsetMs = 0;
    }
    figures.parameters = { graceMs: DEFAULT_PAST_DUE_GRACE_MS };
    await recordFigures('billing-webhook', figures);
  });
});
