import type Stripe from 'stripe';
import type { PlanStore } from '../accounts/plan-store';
import type { BillingApi, CheckoutOutcome, PortalOutcome } from './api';
import type { BillingAccounts } from './billing-accounts';

/** Statuses in which a subscription still holds the account: a second one would bill it twice. */
const LIVE_STATUSES = new Set(['active', 'trialing', 'past_due', 'unpaid', 'incomplete', 'paused']);

/**
 * Self-serve upgrade (user-api `POST /billing/checkout`, `POST /billing/portal`): a Checkout
 * Session for a plan's price, for the account's Stripe customer, and the customer portal for
 * everything after (plan changes, payment methods, cancellation).
 */
export class BillingSessions implements Pick<BillingApi, 'checkout' | 'portal'> {
  readonly #stripe: Stripe;
  readonly #accounts: BillingAccounts;
  readonly #plans: PlanStore;
  readonly #returnUrl: string;

  constructor(options: { stripe: Stripe; accounts: BillingAccounts; plans: PlanStore; returnUrl: string }) {
    this.#stripe = options.stripe;
    this.#accounts = options.accounts;
    this.#plans = options.plans;
    this.#returnUrl = options.returnUrl;
  }

  async checkout(account: { accountId: string; email?: string }, planId: string): Promise<CheckoutOutcome> {
    const plan = await this.#plans.getPlan(planId);
    if (!plan) return { ok: false, reason: 'unknown_plan' };
    const priceId = plan.billing?.priceId;
    if (!priceId) return { ok: false, reason: 'not_for_sale' };
    const record = await this.#accounts.customer(account.accountId);
    if (record?.subscription && LIVE_STATUSES.has(record.subscription.status)) {
      return { ok: false, reason: 'already_subscribed' };
    }
    const customerId = record?.customerId ?? (await this.#createCustomer(account));
    const session = await this.#stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customerId,
      line_items: [{ price: priceId, quantity: 1 }],
      client_reference_id: account.accountId,
      metadata: { accountId: account.accountId, planId },
      subscription_data: { metadata: { accountId: account.accountId, planId } },
      success_url: withQuery(this.#returnUrl, 'checkout=success&session_id={CHECKOUT_SESSION_ID}'),
      cancel_url: withQuery(this.#returnUrl, 'checkout=canceled'),
    });
    if (!session.url) throw new Error(`Checkout Session ${session.id} has no url`);
    return { ok: true, url: session.url, sessionId: session.id };
  }

  async portal(accountId: string): Promise<PortalOutcome> {
    const record = await this.#accounts.customer(accountId);
    if (!record) return { ok: false, reason: 'no_customer' };
    const session = await this.#stripe.billingPortal.sessions.create({
      customer: record.customerId,
      return_url: this.#returnUrl,
    });
    return { ok: true, url: session.url };
  }

  /**
   * The account's one customer. The Idempotency-Key is the account's, so a crash between creating
   * it and remembering it, or two checkouts at once, make one customer, not two (Stripe replays a
   * key's first answer for 24 hours; `rememberCustomer` keeps the first remembered after that).
   */
  async #createCustomer(account: { accountId: string; email?: string }): Promise<string> {
    const customer = await this.#stripe.customers.create(
      {
        ...(account.email ? { email: account.email } : {}),
        metadata: { accountId: account.accountId },
      },
      { idempotencyKey: `tollgate-customer-${account.accountId}` },
    );
    return this.#accounts.rememberCustomer(account.accountId, customer.id);
  }
}

function withQuery(url: string, query: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${query}`;
}
