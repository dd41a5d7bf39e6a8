/**
 * Billing's shared vocabulary: what the user API answers about an account's billing
 * (`GET /me/billing`), the page shows, and the billing jobs enforce. docs/billing.md is the design.
 */

/** Stripe's subscription statuses (Stripe API reference, "The Subscription object"). */
export const SUBSCRIPTION_STATUSES = [
  'incomplete',
  'incomplete_expired',
  'trialing',
  'active',
  'past_due',
  'canceled',
  'unpaid',
  'paused',
] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

/**
 * How long a subscription may stay `past_due` or `unpaid` before its account is suspended: long
 * enough for Stripe's smart retries of the first failed payment (a few days), short enough that an
 * unpaid account does not run up a month of usage.
 */
export const DEFAULT_PAST_DUE_GRACE_MS = 3 * 24 * 3600_000;

/**
 * Stripe refuses a meter event whose timestamp is older than 35 calendar days ("must be within the
 * past 35 calendar days", API reference, Create a billing meter event): such days are never pushed.
 */
export const METER_BACKDATE_LIMIT_MS = 35 * 24 * 3600_000;

/** ... or more than 5 minutes in the future. */
export const METER_FUTURE_LIMIT_MS = 5 * 60_000;

/** The meter's `event_name` unless configured. */
/** Where the billing webhook takes Stripe's deliveries: API Gateway's route, the local server's, the endpoint registered with Stripe. */
export const BILLING_WEBHOOK_PATH = '/billing/webhook';

export const DEFAULT_METER_EVENT_NAME = 'tollgate_requests';

/** How often the export runs unless configured (EventBridge on AWS, a timer locally). */
export const DEFAULT_EXPORT_INTERVAL_MS = 5 * 60_000;

/** An account's subscription as the user API reports it. */
export interface BillingSubscriptionView {
  readonly status: SubscriptionStatus;
  /** The plan whose price the subscription is for (the default plan when no plan has its price). */
  readonly planId: string;
  /** ISO 8601: when the current period ends (a renewal, or the end of a canceled subscription). */
  readonly currentPeriodEnd: string;
  /** Canceled at period end: the account returns to the default plan then. */
  readonly cancelAtPeriodEnd?: boolean;
}

/** `GET /me/billing`. */
export interface MeBilling {
  /** The account's Stripe customer, once it has one (its first checkout). */
  readonly customerId?: string;
  readonly subscription?: BillingSubscriptionView;
  readonly usage: {
    /** The billing period usage is summed over: the subscription's current period, else the UTC month. */
    readonly period: { readonly start: string; readonly end: string };
    /** What Tollgate's counters hold for the period (every billed answer counted). */
    readonly metered: number;
    /** What Tollgate has reported to the billing provider for the period (and it accepted). */
    readonly reported: number;
    /** When `metered` was read (ISO 8601). */
    readonly asOf: string;
  };
  /** metered = reported: nothing is waiting to be exported. */
  readonly inSync: boolean;
}
