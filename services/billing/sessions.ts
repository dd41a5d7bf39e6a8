import type Stripe from 'stripe';
import type { PlanStore } from '../accounts/plan-store';
import type { BillingApi, CheckoutOutcome, PortalOutcome } from './api';
import type { BillingAccounts } from './billing-accounts';
import { isLiveSubscription } from './subscription-sync';

export interface BillingSessionsOptions {
  readonly stripe: Stripe;
  readonly accounts: BillingAccounts;
  readonly plans: Pick<PlanStore, 'getPlan'>;
  /** Where Checkout and the portal send the user back (the web app's billing view). */
  readonly returnUrl: string;
}

/** Checkout and the customer portal (BillingApi's two; billing-summary.ts has the third). */
export class BillingSessions implements Pick<BillingApi, 'checkout' | 'portal'> {
  readonly #o: BillingSessionsOptions;

  constructor(options: BillingSessionsOptions) {
    this.#o = options;
  }

  async checkout(account: { accountId: string; email?: string }, planId: string): Promise<CheckoutOutcome> {
    const plan = await this.#o.plans.getPlan(planId);
    if (!plan) return { ok: false, reason: 'unknown_plan' };
    const priceId = plan.billing?.priceId;
    if (!priceId) return { ok: false, reason: 'not_for_sale' };
    const known = await this.#o.accounts.account(account.accountId);
    if (isLiveSubscription(known?.subscription?.status)) return { ok: false, reason: 'already_subscribed' };
    const customerId = known?.customerId ?? (await this.#createCustomer(account));
    const session = await this.#o.stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customerId,
      line_items: [{ price: priceId, quantity: 1 }],
      client_reference_id: account.accountId,
      metadata: { accountId: account.accountId },
      subscription_data: { metadata: { accountId: account.accountId } },
      success_url: this.#o.returnUrl,
      cancel_url: this.#o.returnUrl,
    });
    if (!session.url) throw new Error('Stripe answered a Checkout Session without a url');
    return { ok: true, url: session.url, sessionId: session.id };
  }

  async portal(accountId: string): Promise<PortalOutcome> {
    const customerId = await this.#o.accounts.customer(accountId);
    if (!customerId) return { ok: false, reason: 'no_customer' };
    const session = await this.#o.stripe.billingPortal.sessions.create({
      customer: customerId,
      return_url: this.#o.returnUrl,
    });
    return { ok: true, url: session.url };
  }

  /**
   * The account's customer, created under an Idempotency-Key per account: a crash between the
   * create and the remember re-creates nothing (Stripe answers the first customer again for 24 h),
   * and rememberCustomer keeps whichever customer was remembered first.
   */
  async #createCustomer(account: { accountId: string; email?: string }): Promise<string> {
    const customer = await this.#o.stripe.customers.create(
      {
        metadata: { accountId: account.accountId },
        ...(account.email ? { email: account.email } : {}),
      },
      { idempotencyKey: `tollgate-customer-${account.accountId}` },
    );
    return this.#o.accounts.rememberCustomer(account.accountId, customer.id);
  }
}
