import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { MeBilling } from '../../contracts/billing';
import { ENV } from '../../contracts/config';
import { utcDay } from '../../contracts/usage-event';
import { PlanStore } from '../../services/accounts/plan-store';
import { stripeClient } from '../../services/billing/stripe-client';
import { documentClient } from '../../services/platform/aws-clients';
import { recordFigures } from '../support/figures';
import { endpoints, exampleApi, signUpAndSignIn, userApi } from '../support/local-stack';
import { eventually } from '../support/wait';

// Issue 23's "done means", end to end on the stack `npm start` runs: the web page's calls to the
// user API, the Stripe stand-in's hosted Checkout page, its signed webhook to the billing webhook,
// the gate of the example API, metering, and the scheduled export back to the stand-in's meter.

interface LocalBilling {
  secretKey: string;
  webhookSecret: string;
  meterId: string;
  eventName: string;
  prices: Record<string, string>;
}

const billingFile = (): LocalBilling =>
  JSON.parse(readFileSync(join(inject('dataDir'), 'billing.json'), 'utf8')) as LocalBilling;

const env = inject('env');
const plans = () =>
  new PlanStore({
    client: documentClient(inject('aws')),
    plansTable: env[ENV.plansTable] as string,
    accountsTable: env[ENV.accountsTable] as string,
  });

async function stripeTotalToday(billing: LocalBilling, customer: string): Promise<number> {
  const stripe = stripeClient(billing.secretKey, { apiUrl: endpoints().stripe });
  const start = Date.parse(`${utcDay(Date.now())}T00:00:00Z`) / 1000;
  const summaries = await stripe.billing.meters.listEventSummaries(billing.meterId, {
    customer,
    start_time: start,
    end_time: start + 86_400,
    value_grouping_window: 'day',
  });
  return summaries.data.reduce((total, summary) => total + summary.aggregated_value, 0);
}

describe('billing on the local stack: Checkout sets the plan, usage reaches the meter', () => {
  it('sign up → checkout pro → pro at the gate; N billed calls → the meter says N, billed = metered', async () => {
    const billing = billingFile();
    const pro = await plans().getPlan('pro');
    expect(pro?.billing?.priceId).toBe(billing.prices.pro);

    const owner = await signUpAndSignIn('billing-flow');
    const checkout = await userApi(owner.idToken, 'POST', '/billing/checkout', { planId: 'pro' });
    expect(checkout.status).toBe(201);
    const session = checkout.body as { url: string; sessionId: string };
    expect(session.sessionId).toMatch(/^cs_/);

    // The customer pays on the hosted page (Stripe's succeeding test card).
    const startedAt = Date.now();
    const paid = await fetch(session.url, {
      method: 'POST',
      body: new URLSearchParams({ card: '4242424242424242' }),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    await eventually(
      async () =>
        ((await userApi(owner.idToken, 'GET', '/me/plan')).body as { planId: string }).planId === 'pro',
      20_000,
      200,
    );
    const onProAfterMs = Date.now() - startedAt;

    const created = await userApi(owner.idToken, 'POST', '/keys', { name: 'billed' });
    expect(created.status).toBe(201);
    const key = (created.body as { key: string }).key;
    // The gate applies pro's limits once its cached standing is refreshed: its RateLimit-Policy names them.
    const quota = pro?.quota?.requests;
    let billed = 0;
    await eventually(
      async () => {
        const answer = await exampleApi('/v1/rates/EUR', { key });
        if (answer.status === 200) billed++;
        return answer.headers.get('ratelimit-policy')?.includes(`"quota";q=${quota}`) === true;
      },
      30_000,
      500,
    );
    // A second key of the same account: the meter bills the account, not the key.
    const second = await userApi(owner.idToken, 'POST', '/keys', { name: 'billed-too' });
    expect(second.status).toBe(201);
    const keys = [key, (second.body as { key: string }).key];
    for (let i = 0; i < 20; i++) {
      const answer = await exampleApi('/v1/rates/EUR', { key: keys[i % keys.length] });
      expect(answer.status).toBe(200);
      billed++;
    }

    const summary = async () => (await userApi(owner.idToken, 'GET', '/me/billing')).body as MeBilling;
    await eventually(
      async () => {
        const now = await summary();
        return now.inSync && now.usage.metered === billed;
      },
      60_000,
      500,
    );
    const final = await summary();
    expect(final.subscription?.planId).toBe('pro');
    expect(final.subscription?.status).toBe('active');
    expect(final.usage).toMatchObject({ metered: billed, reported: billed });
    const customer = final.customerId as string;
    expect(customer).toMatch(/^cus_/);
    expect(await stripeTotalToday(billing, customer)).toBe(billed);
    await recordFigures('billing-flow', {
      billed,
      metered: final.usage.metered,
      reported: final.usage.reported,
      stripeTotal: await stripeTotalToday(billing, customer),
      onProAfterMs,
    });
  });
});
