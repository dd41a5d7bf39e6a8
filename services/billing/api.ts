import type { MeBilling } from '../../contracts/billing';

/**
 * What user-api's billing routes need of billing (services/user-api/routes/billing.ts), so the routes
 * are written against this and composed from the real classes (sessions.ts for checkout and the
 * portal, billing-summary.ts for `GET /me/billing`).
 */
export interface BillingApi {
  /**
   * A Checkout Session in subscription mode for the plan's price, for the account's Stripe customer
   * (created on the first checkout and remembered).
   */
  checkout(account: { accountId: string; email?: string }, planId: string): Promise<CheckoutOutcome>;
  /** A customer portal session for the account's customer. */
  portal(accountId: string): Promise<PortalOutcome>;
  summary(accountId: string, now: Date): Promise<MeBilling>;
}

export type CheckoutOutcome =
  | { ok: true; url: string; sessionId: string }
  /** No such plan. */
  | { ok: false; reason: 'unknown_plan' }
  /** The plan has no price (`billing.priceId`): it is not sold. */
  | { ok: false; reason: 'not_for_sale' }
  /** The account already has a live subscription: plan changes go through the portal. */
  | { ok: false; reason: 'already_subscribed' };

export type PortalOutcome = { ok: true; url: string } | { ok: false; reason: 'no_customer' };
