import { randomUUID } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { type StripeStandIn, startStripeStandIn } from '../../infra/local/stripe/index';
import { PlanStore } from '../../services/accounts/plan-store';
import { fixedSecrets } from '../../services/billing/secrets';
import { stripeClient } from '../../services/billing/stripe-client';
import { documentClient } from '../../services/platform/aws-clients';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import { requestApp } from '../support/app-request';
import { signUpAndSignIn, type TestUser } from '../support/local-stack';

// Self-serve upgrade as the page calls it: user-api composed as its Lambda handler composes it
// (billing from the config's billing settings, the Stripe key from the secrets it is given), over
// the test stack's DynamoDB Local and Cognito, against a Stripe stand-in of this test's own.

const env = inject('env');
const aws = inject('aws');
const billingTable = env[ENV.billingTable] ?? (env[ENV.usageTable] as string).replace(/-usage$/, '-billing');
const plans = new PlanStore({
  client: documentClient(aws),
  plansTable: env[ENV.plansTable] as string,
  accountsTable: env[ENV.accountsTable] as string,
});

/** The env without any billing settings: a deployment that does not sell plans. */
const withoutBilling = Object.fromEntries(
  Object.entries(env).filter(
    ([name]) =>
      ![ENV.billingTable, ENV.stripeSecretKeyArn, ENV.stripeApiUrl, ENV.billingReturnUrl].includes(
        name as never,
      ),
  ),
);

let standIn: StripeStandIn;
let app: ReturnType<typeof composeUserApi>;
let pricedPlanId: string;
let unpricedPlanId: string;

beforeAll(async () => {
  standIn = await startStripeStandIn();
  const stripe: Stripe = stripeClient(standIn.secretKey, { apiUrl: standIn.url });
  const config = loadUserApiConfig({
    ...withoutBilling,
    [ENV.billingTable]: billingTable,
    [ENV.stripeSecretKeyArn]: 'arn:aws:secretsmanager:local:000000000000:secret:stripe-key',
    [ENV.stripeApiUrl]: standIn.url,
    [ENV.billingReturnUrl]: 'http://127.0.0.1:5173/',
  });
  app = composeUserApi(config, { aws, billingSecrets: fixedSecrets({ stripeSecretKey: standIn.secretKey }) });
  const price = await stripe.prices.create({
    currency: 'usd',
    unit_amount: 2900,
    recurring: { interval: 'month' },
    product_data: { name: 'Pro' },
  });
  const suffix = randomUUID().slice(0, 6);
  pricedPlanId = `pro-${suffix}`;
  unpricedPlanId = `team-${suffix}`;
  await plans.putPlan(pricedPlanId, { name: 'Pro', billing: { priceId: price.id } }, new Date());
  await plans.putPlan(unpricedPlanId, { name: 'Team' }, new Date());
});

afterAll(async () => {
  await standIn?.stop();
});

/** A new owner whose account exists (`GET /me` provisions it), as after the first page load. */
async function owner(label: string): Promise<TestUser> {
  const user = await signUpAndSignIn(label);
  expect((await requestApp(app, '/me', { token: user.idToken })).status).toBe(200);
  return user;
}

const checkout = (user: TestUser, planId: string) =>
  requestApp(app, '/billing/checkout', { token: user.idToken, method: 'POST', body: { planId } });
const portal = (user: TestUser) =>
  requestApp(app, '/billing/portal', { token: user.idToken, method: 'POST' });

async function errorOf(response: Response): Promise<string | undefined> {
  return ((await response.json()) as { error?: { code?: string } }).error?.code;
}

describe('user-api billing routes: checkout, the portal and the billing summary', () => {
  it('checkout of a priced plan is a Stripe Checkout Session that can be paid', async () => {
    const user = await owner('bill-routes-checkout');
    const response = await checkout(user, pricedPlanId);
    expect(response.status).toBe(201);
    const session = (await response.json()) as { url: string; sessionId: string };
    expect(session.sessionId).toMatch(/^cs_/);
    const paid = await fetch(session.url, {
      method: 'POST',
      body: new URLSearchParams({ card: '4242424242424242' }),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
  });

  it('an unknown plan is 404, a plan without a price is 409', async () => {
    const user = await owner('bill-routes-refused');
    const unknown = await checkout(user, `nope-${randomUUID().slice(0, 6)}`);
    expect(unknown.status).toBe(404);
    expect(await errorOf(unknown)).toBe('not_found');
    const unpriced = await checkout(user, unpricedPlanId);
    expect(unpriced.status).toBe(409);
    expect(await errorOf(unpriced)).toMatch(/^(conflict|not_for_sale)$/);
  });

  it('GET /me/billing before any usage: nothing metered, nothing reported, in sync', async () => {
    const user = await owner('bill-routes-summary');
    const response = await requestApp(app, '/me/billing', { token: user.idToken });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ usage: { metered: 0, reported: 0 }, inSync: true });
  });

  it('the portal is 409 before the account has a Stripe customer, 200 after its checkout', async () => {
    const user = await owner('bill-routes-portal');
    const before = await portal(user);
    expect(before.status).toBe(409);
    expect(await errorOf(before)).toBe('conflict');
    expect((await checkout(user, pricedPlanId)).status).toBe(201);
    const after = await portal(user);
    expect(after.status).toBe(200);
    expect(((await after.json()) as { url: string }).url).toMatch(/^https?:\/\//);
  });

  it('without billing configured, every billing route is 404 not_found', async () => {
    const bare = composeUserApi(loadUserApiConfig(withoutBilling), { aws });
    const user = await signUpAndSignIn('bill-routes-bare');
    expect((await requestApp(bare, '/me', { token: user.idToken })).status).toBe(200);
    const answers = [
      await requestApp(bare, '/billing/checkout', {
        token: user.idToken,
        method: 'POST',
        body: { planId: pricedPlanId },
      }),
      await requestApp(bare, '/billing/portal', { token: user.idToken, method: 'POST' }),
      await requestApp(bare, '/me/billing', { token: user.idToken }),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(404);
      const body = (await answer.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('not_found');
      expect(body.error.message).toMatch(/billing is not configured/i);
    }
  });

  it('Stripe answering 5xx (after the SDK retries) is 503 with retry-after', async () => {
    const user = await owner('bill-routes-outage');
    standIn.injectFault({ kind: 'server_error' }, 5);
    const response = await checkout(user, pricedPlanId);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBeTruthy();
    expect(await errorOf(response)).toBe('service_unavailable');
  });
});
