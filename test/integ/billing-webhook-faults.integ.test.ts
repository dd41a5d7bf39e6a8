import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { serve } from '@hono/node-server';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { utcDay } from '../../contracts/usage-event';
import { closeServer } from '../../infra/local/http-util';
import { type StripeStandIn, signatureHeader, startStripeStandIn } from '../../infra/local/stripe/index';
import { PlanStore } from '../../services/accounts/plan-store';
import { BillingAccounts } from '../../services/billing/billing-accounts';
import { customerAccountItem } from '../../services/billing/billing-keys';
import { ExportLedger } from '../../services/billing/export-ledger';
import { fixedSecrets } from '../../services/billing/secrets';
import { BillingSessions } from '../../services/billing/sessions';
import { stripeClient } from '../../services/billing/stripe-client';
import { StripeMeterSink } from '../../services/billing/stripe-sink';
import { composeBillingJobs } from '../../services/billing-jobs/compose';
import { loadBillingJobsConfig } from '../../services/billing-jobs/config';
import { documentClient } from '../../services/platform/aws-clients';
import { UsageStore } from '../../services/usage/usage-store';
import { signUpAndSignIn, userApi } from '../support/local-stack';
import { eventually } from '../support/wait';

// The billing webhook while a dependency is down: Stripe (its API answering 500) and DynamoDB (no
// connection). Either is a 503, so Stripe delivers the event again, and nothing is half-applied:
// the retried delivery, once the dependency is back, brings the account to its subscription.

const WEBHOOK_SECRET = 'whsec_billing_webhook_faults_test';
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
const logger = new Logger({ serviceName: 'billing-webhook-faults-test', logLevel: 'SILENT' });
const noMetrics = { addMetric: () => undefined };

let standIn: StripeStandIn;
let stripe: Stripe;
let server: ReturnType<typeof serve>;
let config: ReturnType<typeof loadBillingJobsConfig>;
let proPlanId: string;
let sink: StripeMeterSink;

beforeAll(async () => {
  // The stand-in learns the webhook's address only once it listens: start the app on a port first.
  let jobs: ReturnType<typeof composeBillingJobs> | undefined;
  server = serve({
    fetch: (request) => (jobs ? jobs.webhook.fetch(request) : new Response('starting', { status: 503 })),
    port: 0,
    hostname: '127.0.0.1',
  });
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/billing/webhook`;
  standIn = await startStripeStandIn({
    webhook: { url, secret: WEBHOOK_SECRET, retryDelaysMs: [50, 100, 200] },
  });
  stripe = stripeClient(standIn.secretKey, { apiUrl: standIn.url, maxNetworkRetries: 0 });
  const meter = await stripe.billing.meters.create({
    display_name: 'Tollgate requests',
    event_name: `tollgate_webhook_faults_${randomUUID().slice(0, 8)}`,
    default_aggregation: { formula: 'sum' },
    event_time_window: 'day',
  });
  sink = new StripeMeterSink({ stripe, eventName: meter.event_name, meterId: meter.id });
  config = loadBillingJobsConfig({
    ...env,
    [ENV.billingTable]: billingTable,
    [ENV.stripeSecretKeyArn]: 'arn:aws:secretsmanager:local:000000000000:secret:stripe-key',
    [ENV.stripeWebhookSecretArn]: 'arn:aws:secretsmanager:local:000000000000:secret:stripe-webhook',
    [ENV.stripeApiUrl]: standIn.url,
    [ENV.billingMeterId]: meter.id,
    [ENV.billingMeterEvent]: meter.event_name,
  });
  jobs = composeBillingJobs(config, { aws, logger, metrics: noMetrics, secrets: secrets() });
  const price = await stripe.prices.create({
    currency: 'usd',
    unit_amount: 2900,
    recurring: { interval: 'month' },
    product_data: { name: 'Pro' },
  });
  proPlanId = `pro-faults-${randomUUID().slice(0, 6)}`;
  await plans.putPlan(proPlanId, { name: 'Pro', billing: { priceId: price.id } }, new Date());
});

afterAll(async () => {
  await standIn?.stop();
  if (server) await closeServer(server as unknown as Server);
});

const secrets = () => fixedSecrets({ stripeSecretKey: standIn.secretKey, webhookSecret: WEBHOOK_SECRET });
const standing = (accountId: string) => plans.standing(accountId, { consistent: true });

async function newAccount(label: string): Promise<{ accountId: string; email: string }> {
  const owner = await signUpAndSignIn(label);
  const accountId = ((await userApi(owner.idToken, 'GET', '/me')).body as { userId: string }).userId;
  return { accountId, email: owner.email };
}

async function pay(account: { accountId: string; email: string }): Promise<void> {
  const sessions = new BillingSessions({
    stripe,
    accounts: billingAccounts,
    plans,
    returnUrl: 'http://127.0.0.1:5173/',
  });
  const checkout = await sessions.checkout(account, proPlanId);
  if (!checkout.ok) throw new Error(`checkout refused: ${checkout.reason}`);
  const paid = await fetch(checkout.url, {
    method: 'POST',
    body: new URLSearchParams({ card: '4242424242424242' }),
    redirect: 'manual',
  });
  expect(paid.status).toBe(303);
}

describe('the billing webhook while a dependency is unavailable', () => {
  it('Stripe answering 500: the delivery is 503, Stripe delivers again, and the account gets its plan', async () => {
    const account = await newAccount('bill-stripe-down');
    const before = standIn.deliveries.length;
    // Reads of the subscription fail for a while: more than the SDK's own retries of the two
    // deliveries that read it (3 attempts each), fewer than Stripe's redeliveries then make.
    standIn.injectFault({ kind: 'server_error' }, 8, 'GET /v1/subscriptions/{subscription_exposed_id}');
    await pay(account);
    await standIn.webhooksIdle();
    const attempts = standIn.deliveries.slice(before);
    expect(attempts.some((attempt) => attempt.status === 503)).toBe(true);
    // Every event that was refused was delivered again and accepted.
    for (const refused of attempts.filter((attempt) => attempt.status === 503)) {
      expect(attempts.some((a) => a.eventId === refused.eventId && a.status === 200)).toBe(true);
    }
    await eventually(async () => (await standing(account.accountId))?.planId === proPlanId, 10_000, 100);
    expect(await standing(account.accountId)).toMatchObject({ planId: proPlanId, status: 'active' });
  });

  it('DynamoDB unreachable: 503 with retry-after and nothing applied; the same event applies once it is back', async () => {
    const account = await newAccount('bill-dynamo-down');
    await pay(account);
    await eventually(async () => (await standing(account.accountId))?.planId === proPlanId, 10_000, 100);
    const record = await billingAccounts.customer(account.accountId);
    const subscriptionId = record?.subscription?.subscriptionId as string;
    // Canceled in Stripe (the stand-in's own deliveries reach the healthy webhook); the account is
    // then put back on pro by hand, and a newer deletion event is handed first to a webhook whose
    // DynamoDB is down, then to the healthy one: only the second may take the account off pro.
    const canceled = await stripe.subscriptions.cancel(subscriptionId);
    await standIn.webhooksIdle();
    const event = {
      id: `evt_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
      object: 'event',
      type: 'customer.subscription.deleted',
      created: standIn.nowSeconds() + 60,
      livemode: false,
      api_version: '2025-10-29.clover',
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: canceled },
    };
    const body = JSON.stringify(event);
    const signature = signatureHeader(body, WEBHOOK_SECRET, Math.floor(Date.now() / 1000));
    const down = composeBillingJobs(config, {
      aws: { ...aws, endpoints: { ...aws.endpoints, dynamodb: 'http://127.0.0.1:9' } },
      logger,
      metrics: noMetrics,
      secrets: secrets(),
    });
    await plans.assignPlan(account.accountId, proPlanId);
    const refused = await down.webhook.fetch(
      new Request('http://webhook/billing/webhook', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signature },
        body,
      }),
    );
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect(await refused.json()).toMatchObject({ error: { code: 'service_unavailable' } });
    expect((await standing(account.accountId))?.planId).toBe(proPlanId);

    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/billing/webhook`;
    const accepted = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': signature },
      body,
    });
    expect(accepted.status).toBe(200);
    expect((await standing(account.accountId))?.planId).toBe('default');
  });
});

describe('the billing webhook before an invoice', () => {
  it("invoice.upcoming pushes the account's usage so far, so the invoice bills it", async () => {
    // Only the customer → account item is written, not the account's CUSTOMER item: the test
    // stack's own billing jobs export every CUSTOMER item of this shared table every few seconds
    // (to their own stand-in), and would otherwise race this webhook for the account's day.
    const accountId = `bill-invoice-${randomUUID()}`;
    const customerId = (await stripe.customers.create({ description: accountId })).id;
    await dynamo.send(
      new PutCommand({ TableName: billingTable, Item: { ...customerAccountItem(customerId), accountId } }),
    );
    const day = utcDay(Date.now());
    const events = Array.from({ length: 7 }, () => ({ id: randomUUID(), ts: Date.now() - 60_000, units: 1 }));
    await new UsageStore({ client: dynamo, table: env[ENV.usageTable] as string }).applyTransaction(
      [
        {
          owner: { accountId, keyId: 'key-1', day },
          events,
          recordIds: events.map((e) => e.id),
        },
      ],
      new Date(),
    );
    expect((await sink.reportedTotals(customerId, day, day)).get(day) ?? 0).toBe(0);

    const body = JSON.stringify({
      id: `evt_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
      object: 'event',
      type: 'invoice.upcoming',
      created: standIn.nowSeconds(),
      livemode: false,
      api_version: '2025-10-29.clover',
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: { object: 'invoice', id: null, customer: customerId } },
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/billing/webhook`;
    const answer = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': signatureHeader(body, WEBHOOK_SECRET, Math.floor(Date.now() / 1000)),
      },
      body,
    });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ received: true, outcome: 'exported' });
    expect((await sink.reportedTotals(customerId, day, day)).get(day)).toBe(7);
  });
});

describe('invoice.upcoming while another exporter holds the account', () => {
  it('is 503 (Stripe delivers again), and the redelivery after the lease is released pushes the usage', async () => {
    const accountId = `bill-leased-${randomUUID()}`;
    const customerId = (await stripe.customers.create({ description: accountId })).id;
    await dynamo.send(
      new PutCommand({ TableName: billingTable, Item: { ...customerAccountItem(customerId), accountId } }),
    );
    const day = utcDay(Date.now());
    const events = Array.from({ length: 4 }, () => ({ id: randomUUID(), ts: Date.now() - 60_000, units: 1 }));
    await new UsageStore({ client: dynamo, table: env[ENV.usageTable] as string }).applyTransaction(
      [{ owner: { accountId, keyId: 'key-1', day }, events, recordIds: events.map((e) => e.id) }],
      new Date(),
    );
    const ledger = new ExportLedger({ client: dynamo, table: billingTable });
    expect(await ledger.acquireLease(accountId, 'scheduled-export', new Date(), 60_000)).toBe(true);
    const body = JSON.stringify({
      id: `evt_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
      object: 'event',
      type: 'invoice.upcoming',
      created: standIn.nowSeconds(),
      data: { object: { object: 'invoice', id: null, customer: customerId } },
    });
    const deliver = () =>
      fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/billing/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': signatureHeader(body, WEBHOOK_SECRET, Math.floor(Date.now() / 1000)),
        },
        body,
      });
    expect((await deliver()).status).toBe(503);
    expect((await sink.reportedTotals(customerId, day, day)).get(day) ?? 0).toBe(0);
    await ledger.releaseLease(accountId, 'scheduled-export');
    expect((await deliver()).status).toBe(200);
    expect((await sink.reportedTotals(customerId, day, day)).get(day)).toBe(4);
  });
});
