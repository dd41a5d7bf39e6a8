import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_METER_EVENT_NAME } from '../../../contracts/billing';
import type { Plan } from '../../../contracts/plans';
import { stripeClient } from '../../../services/billing/stripe-client';
import { type AwsOptions, documentClient } from '../../../services/platform/aws-clients';
import type { StripeStandIn } from '../stripe/index';

/** What `<dataDir>/billing.json` holds: how to reach the stand-in's meter and prices. */
export interface LocalBilling {
  readonly secretKey: string;
  readonly webhookSecret: string;
  readonly meterId: string;
  readonly eventName: string;
  readonly prices: Readonly<Record<string, string>>;
}

export const BILLING_FILE = 'billing.json';

/**
 * The paid plan the local stack sells: a quota and a rate limit an owner can see bite, and a
 * monthly price. Written anew on every start (the stand-in's price ids live only as long as it).
 */
const PRO_PLAN = {
  name: 'Pro',
  quota: { requests: 100_000, period: 'month' },
  rateLimit: { requests: 50, perSeconds: 1, scope: 'account' },
} as const;

/**
 * What a deployment creates in Stripe by hand (docs/billing.md), created with the official SDK in
 * the stand-in, which keeps it in memory only: so on every start, anew.
 */
export async function seedStripeCatalog(
  standIn: StripeStandIn,
  webhookSecret: string,
): Promise<LocalBilling> {
  const stripe = stripeClient(standIn.secretKey, { apiUrl: standIn.url });
  const meter = await stripe.billing.meters.create({
    display_name: 'API requests',
    event_name: DEFAULT_METER_EVENT_NAME,
    default_aggregation: { formula: 'sum' },
    customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
    value_settings: { event_payload_key: 'value' },
    event_time_window: 'day',
  });
  // Metered on the meter, not licensed: the renewal invoice bills what Tollgate reported (a cent a
  // request), so the export and the reconciliation are what the invoice's total depends on.
  const price = await stripe.prices.create({
    currency: 'usd',
    unit_amount: 1,
    recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
    product_data: { name: 'Pro' },
  });
  return {
    secretKey: standIn.secretKey,
    webhookSecret,
    meterId: meter.id,
    eventName: meter.event_name,
    prices: { pro: price.id },
  };
}

/** The `pro` plan with this start's price: a put, so the price id of the last start is replaced. */
export async function saveProPlan(aws: AwsOptions, plansTable: string, priceId: string): Promise<void> {
  const plan: Plan = {
    ...PRO_PLAN,
    planId: 'pro',
    billing: { priceId },
    updatedAt: new Date().toISOString(),
  };
  await documentClient(aws).send(new PutCommand({ TableName: plansTable, Item: plan }));
}

export async function writeBillingFile(dataDir: string, billing: LocalBilling): Promise<void> {
  const path = join(dataDir, BILLING_FILE);
  await writeFile(`${path}.tmp`, `${JSON.stringify(billing, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}
