import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { serve } from '@hono/node-server';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MeBilling } from '../../contracts/billing';
import { ENV } from '../../contracts/config';
import { closeServer } from '../../infra/local/http-util';
import { type StripeStandIn, startStripeStandIn } from '../../infra/local/stripe/index';
import { PlanStore } from '../../services/accounts/plan-store';
import { fixedSecrets } from '../../services/billing/secrets';
import { stripeClient } from '../../services/billing/stripe-client';
import { composeBillingJobs } from '../../services/billing-jobs/compose';
import { loadBillingJobsConfig } from '../../services/billing-jobs/config';
import { documentClient } from '../../services/platform/aws-clients';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import { requestApp } from '../support/app-request';
import { signUpAndSignIn } from '../support/local-stack';
import { eventually } from '../support/wait';

// Self-serve upgrade through the user API as an owner uses it: the app composed as the Lambda
// handler composes it (BillingSessions and BillingSummary over the test stack's DynamoDB Local and
// Cognito), the Stripe key handed in as Secrets Manager would hand it; the official SDK reaches a Stripe stand-in of this test's own,
// which delivers its signed events to the billing-jobs webhook composed here, so a paid Checkout
// puts the account on the plan as it does on `npm start`.

const WEBHOOK_SECRET = 'whsec_billing_routes_test';
const RETURN_URL = 'http://127.0.0.1:5173/';
const env = inject('env');
const aws = inject('aws');
const dynamo = documentClient(aws);
const billingTable = env[ENV.billingTable] ?? (env[ENV.usageTable] as string).replace(/-usage$/, '-billing');
const plans = new PlanStore({
  client: dynamo,
  plansTable: env[ENV.plansTable] as string,
  accountsTable: env[ENV.accountsTable] as string,
});
const logger = new Logger({ serviceName: 'billing-routes-test', logLevel: 'SILENT' });
const SECRET_ARN = 'arn:aws:secretsmanager:local:000000000000:secret:stripe-key';

/** The stack's settings without billing's: a deployment where billing is not configured. */
function withoutBilling(): Record<string, string | undefined> {
  const {
    [ENV.billingTable]: _table,
    [ENV.stripeSecretKeyArn]: _key,
    [ENV.stripeApiUrl]: _url,
    [ENV.billingReturnUrl]: _return,
    ...rest
  } = env;
  return rest;
}

let standIn: StripeStandIn;
let stripe: Stripe;
let app: ReturnType<typeof composeUserApi>;
let webhookServer: ReturnType<typeof serve>;
let proPlanId: string;
let freePlanId: string;

beforeAll(async () => {
  // The webhook listens first, so the stand-in can be told where to deliver.
  let jobs: ReturnType<typeof composeBillingJobs> | undefined;
  webhookServer = serve({
    fetch: (request) => (jobs ? jobs.webhook.fetch(request) : new Response(null, { status: 503 })),
    port: 0,
    hostname: '127.0.0.1',
  });
  await new Promise((resolve) => webhookServer.once('listening', resolve));
  const webhookUrl = `http://127.0.0.1:${(webhookServer.address() as AddressInfo).port}/billing/webhook`;
  standIn = await startStripeStandIn({
    webhook: { url: webhookUrl, secret: WEBHOOK_SECRET, retryDelaysMs: [50, 100, 200] },
  });
  stripe = stripeClient(standIn.secretKey, { apiUrl: standIn.url });
  const meter = await stripe.billing.meters.create({
    display_name: 'Tollgate requests',
    event_name: `tollgate_routes_${randomUUID().slice(0, 8)}`,
    default_aggregation: { formula: 'sum' },
    event_time_window: 'day',
  });
  jobs = composeBillingJobs(
    loadBillingJobsConfig({
      ...env,
      [ENV.billingTable]: billingTable,
      [ENV.stripeSecretKeyArn]: SECRET_ARN,
      [ENV.stripeWebhookSecretArn]: 'arn:aws:secretsmanager:local:000000000000:secret:stripe-webhook',
      [ENV.stripeApiUrl]: standIn.url,
      [ENV.billingMeterId]: meter.id,
      [ENV.billingMeterEvent]: meter.event_name,
    }),
    {
      aws,
      logger,
      metrics: { addMetric: () => undefined },
      secrets: fixedSecrets({ stripeSecretKey: standIn.secretKey, webhookSecret: WEBHOOK_SECRET }),
    },
  );
  app = composeUserApi(
    loadUserApiConfig({
      ...env,
      [ENV.billingTable]: billingTable,
      [ENV.stripeSecretKeyArn]: SECRET_ARN,
      [ENV.stripeApiUrl]: standIn.url,
      [ENV.billingReturnUrl]: RETURN_URL,
    }),
    {
      aws,
      logger,
      metrics: { addMetric: () => undefined },
      billingSecrets: fixedSecrets({ stripeSecretKey: standIn.secretKey }),
    },
  );

  const suffix = randomUUID().slice(0, 6);
  const price = await stripe.prices.create({
    currency: 'usd',
    unit_amount: 2900,
    recurring: { interval: 'month' },
    product_data: { name: 'Pro' },
  });
  proPlanId = `pro-${suffix}`;
  freePlanId = `free-${suffix}`;
  await plans.putPlan(
    proPlanId,
    { name: 'Pro', quota: { requests: 100_000, period: 'month' }, billing: { priceId: price.id } },
    new Date(),
  );
  await plans.putPlan(freePlanId, { name: 'Free', quota: { requests: 1000, period: 'month' } }, new Date());
});

afterAll(async () => {
  await standIn?.stop();
  if (webhookServer) await closeServer(webhookServer as unknown as Server);
});

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
}

async function call(
  target: Pick<typeof app, 'request'>,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const response = await requestApp(target, path, {
    method,
    ...(token ? { token } : {}),
    ...(body === undefined ? {} : { body }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Answer['body'],
  };
}

/** The customers the stand-in created for the account (it keeps every answer it gave). */
const customersMadeFor = (accountId: string) =>
  standIn.answers.filter(
    (answer) =>
      answer.route === 'POST /v1/customers' &&
      answer.status === 200 &&
      (answer.body as Stripe.Customer).metadata?.accountId === accountId,
  );

/** A new owner signed in to Cognito whose account exists (GET /me, as the page's first visit). */
async function newOwner(label: string): Promise<{ token: string; accountId: string }> {
  const user = await signUpAndSignIn(label);
  const me = await call(app, user.idToken, 'GET', '/me');
  expect(me.status).toBe(200);
  return { token: user.idToken, accountId: me.body.userId as string };
}

describe('self-serve upgrade: POST /billing/checkout, POST /billing/portal, GET /me/billing', () => {
  it('checkout → pay → the account is on the plan, /me/billing shows the subscription; a second checkout is 409 (already_subscribed) and the portal opens', async () => {
    const { token: owner, accountId } = await newOwner('bill-routes');
    const before = await call(app, owner, 'GET', '/me/billing');
    expect(before.status).toBe(200);
    const fresh = before.body as unknown as MeBilling;
    expect(fresh.customerId).toBeUndefined();
    expect(fresh.subscription).toBeUndefined();
    expect(fresh.usage).toMatchObject({ metered: 0, reported: 0 });
    expect(fresh.inSync).toBe(true);

    // What the page offers: the priced plan, not the free one.
    const forSale = (await call(app, owner, 'GET', '/billing/plans')).body.plans as Array<{ planId: string }>;
    expect(forSale.map((p) => p.planId)).toContain(proPlanId);
    expect(forSale.map((p) => p.planId)).not.toContain(freePlanId);
    expect(forSale.find((p) => p.planId === proPlanId)).toEqual({
      planId: proPlanId,
      name: 'Pro',
      quota: { requests: 100_000, period: 'month' },
    });

    const noCustomer = await call(app, owner, 'POST', '/billing/portal');
    expect(noCustomer.status).toBe(409);
    expect(noCustomer.body.error).toMatchObject({ code: 'conflict', details: { reason: 'no_customer' } });

    const started = await call(app, owner, 'POST', '/billing/checkout', { planId: proPlanId });
    expect(started.status).toBe(201);
    expect(started.body.sessionId).toMatch(/^cs_/);
    const url = started.body.url as string;
    expect(url.startsWith(standIn.url)).toBe(true);
    const paid = await fetch(url, {
      method: 'POST',
      body: new URLSearchParams({ card: '4242424242424242' }),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    // Back on the page, Stripe's redirect carries the session (the return URL of the config).
    expect(paid.headers.get('location')).toContain(`${RETURN_URL}?checkout=success`);

    await eventually(
      async () => (await call(app, owner, 'GET', '/me/plan')).body.planId === proPlanId,
      15_000,
      100,
    );
    const after = (await call(app, owner, 'GET', '/me/billing')).body as unknown as MeBilling;
    expect(after.customerId).toMatch(/^cus_/);
    expect(after.subscription).toMatchObject({ status: 'active', planId: proPlanId });
    expect(Date.parse(after.subscription?.currentPeriodEnd ?? '')).toBeGreaterThan(Date.now());

    const again = await call(app, owner, 'POST', '/billing/checkout', { planId: proPlanId });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'conflict', details: { reason: 'already_subscribed' } });
    expect(again.body.error?.message).toContain('/billing/portal');

    const portal = await call(app, owner, 'POST', '/billing/portal');
    expect(portal.status).toBe(200);
    expect(String(portal.body.url).startsWith(standIn.url)).toBe(true);
    // Still one customer for the account: the checkout made it once and remembered it.
    expect(customersMadeFor(accountId)).toHaveLength(1);
  });

  it('a plan without a price is 409 (not_for_sale), an unknown plan 404, a malformed body 400; none makes a customer', async () => {
    const { token: owner } = await newOwner('bill-routes');
    const free = await call(app, owner, 'POST', '/billing/checkout', { planId: freePlanId });
    expect(free.status).toBe(409);
    expect(free.body.error).toMatchObject({ code: 'conflict', details: { reason: 'not_for_sale' } });
    const unknown = await call(app, owner, 'POST', '/billing/checkout', {
      planId: `nope-${randomUUID().slice(0, 6)}`,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('not_found');
    const malformed = await call(app, owner, 'POST', '/billing/checkout', { planId: proPlanId, price: 1 });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error?.code).toBe('invalid_request');
    expect((await call(app, owner, 'GET', '/me/billing')).body.customerId).toBeUndefined();
  });

  it('Stripe answering 5xx past the SDK retries, or rate limiting, is 503 with retry-after; the same checkout succeeds once Stripe is back', async () => {
    const { token: owner, accountId } = await newOwner('bill-routes');
    standIn.injectFault({ kind: 'server_error' }, 2);
    const outage = await call(app, owner, 'POST', '/billing/checkout', { planId: proPlanId });
    expect(outage.status).toBe(503);
    expect(outage.body.error?.code).toBe('service_unavailable');
    expect(Number(outage.headers.get('retry-after'))).toBeGreaterThan(0);
    standIn.injectFault({ kind: 'rate_limit' }, 1);
    const limited = await call(app, owner, 'POST', '/billing/checkout', { planId: proPlanId });
    expect(limited.status).toBe(503);
    expect(limited.headers.get('retry-after')).not.toBeNull();

    const recovered = await call(app, owner, 'POST', '/billing/checkout', { planId: proPlanId });
    expect(recovered.status).toBe(201);
    expect(customersMadeFor(accountId)).toHaveLength(1);
  });

  it('without billing configured every billing route is 404 "billing is not configured"; without a token 401', async () => {
    const plain = composeUserApi(loadUserApiConfig(withoutBilling()), { aws, logger });
    const { token: owner } = await newOwner('bill-routes');
    for (const [method, path, body] of [
      ['POST', '/billing/checkout', { planId: proPlanId }],
      ['POST', '/billing/portal', undefined],
      ['GET', '/me/billing', undefined],
      ['GET', '/billing/plans', undefined],
    ] as const) {
      const answer = await call(plain, owner, method, path, body);
      expect(answer.status).toBe(404);
      expect(answer.body.error).toEqual({ code: 'not_found', message: 'billing is not configured' });
      expect((await call(app, undefined, method, path, body)).status).toBe(401);
    }
  });
});
