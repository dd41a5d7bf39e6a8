import { z } from 'zod';

/**
 * Plans: how a SaaS owner sells tiers. The admin API writes them (user-api `PUT /admin/plans/{id}`),
 * the gate enforces them where keys are checked, metering's quota alerts read them. One schema for
 * all three, so what the owner saves is exactly what is enforced.
 */

export const PLAN_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const planIdSchema = z
  .string()
  .regex(PLAN_ID_PATTERN, 'lowercase letters, digits and dashes, at most 63');

/** The plan of accounts that have none assigned (every new sign-up): the owner edits it like any other. */
export const DEFAULT_PLAN_ID = 'default';

/**
 * A fixed-window rate limit: at most `requests` per `perSeconds`, per key or per account. For the
 * whole account unless the plan says `key`: a per-key limit multiplies with every key the account
 * makes (25 keys, 25 times the rate), so it caps nothing an owner can rely on.
 */
export const rateLimitSchema = z.strictObject({
  requests: z.number().int().positive().max(1_000_000),
  perSeconds: z.number().int().positive().max(86_400),
  /** @default 'account' */
  scope: z.enum(['key', 'account']).default('account'),
});

export const QUOTA_PERIODS = ['day', 'month'] as const;
export type QuotaPeriod = (typeof QUOTA_PERIODS)[number];

/** At most `requests` counted requests per UTC day or calendar month, for the whole account. */
export const quotaSchema = z.strictObject({
  requests: z.number().int().positive().max(1_000_000_000),
  period: z.enum(QUOTA_PERIODS),
});

/** Stripe's price ids: `price_` and letters, digits or underscores. */
export const PRICE_ID_PATTERN = /^price_[A-Za-z0-9_]{1,200}$/;
export const billingSchema = z.strictObject({
  priceId: z.string().regex(PRICE_ID_PATTERN, 'a Stripe price id (price_…)'),
});

export const planBodySchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  rateLimit: rateLimitSchema.optional(),
  quota: quotaSchema.optional(),
  /** Live keys (active, pending or expiring) an account may hold at once. */
  maxKeys: z.number().int().positive().max(10_000).optional(),
  /**
   * What the plan costs: the Stripe price a subscription to it is for (docs/billing.md). A
   * subscription to this price puts its account on this plan; a plan without one (the free
   * default) is not sold through Checkout.
   */
  billing: billingSchema.optional(),
});

export type PlanBody = z.infer<typeof planBodySchema>;
export type RateLimit = z.infer<typeof rateLimitSchema>;
export type Quota = z.infer<typeof quotaSchema>;
export type PlanBilling = z.infer<typeof billingSchema>;

export interface Plan extends PlanBody {
  planId: string;
  /** When the owner last saved it; absent on the shipped default plan (SHIPPED_DEFAULT_PLAN). */
  updatedAt?: string;
}

/**
 * Live keys an account on the default plan may hold while the owner has not saved a default plan
 * of their own. Without a cap one account held 51 live keys (issue 21), each a key to look up and
 * to guess against; 25 leaves room for an environment per key and rolls in flight. The owner sets
 * another (or none) by saving the default plan: `PUT /admin/plans/default`.
 */
export const DEFAULT_PLAN_MAX_KEYS = 25;

/**
 * The default plan as Tollgate ships it: what accounts without a plan get until the owner saves one
 * under DEFAULT_PLAN_ID (PlanStore reads it in place of the missing item, so every deployment has
 * it at once, with nothing to seed). A key cap, and no rate limit or quota: those are the owner's to sell.
 */
export const SHIPPED_DEFAULT_PLAN: Plan = {
  planId: DEFAULT_PLAN_ID,
  name: 'Default',
  maxKeys: DEFAULT_PLAN_MAX_KEYS,
};

export const ACCOUNT_STATUSES = ['active', 'suspended'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

/** The Cognito group whose members are the SaaS owner's admins (`cognito:groups` in their ID token). */
export const ADMIN_GROUP = 'admins';

/**
 * When a period that contains `at` began and when it ends (the next begins), UTC: a day is a
 * calendar day, a month a calendar month.
 */
export function periodBounds(period: QuotaPeriod, at: Date): { start: Date; end: Date } {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  const d = at.getUTCDate();
  if (period === 'day') return { start: new Date(Date.UTC(y, m, d)), end: new Date(Date.UTC(y, m, d + 1)) };
  return { start: new Date(Date.UTC(y, m, 1)), end: new Date(Date.UTC(y, m + 1, 1)) };
}
