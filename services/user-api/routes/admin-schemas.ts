import { z } from '@hono/zod-openapi';
import {
  ACCOUNT_STATUSES,
  billingSchema,
  planBodySchema,
  planIdSchema,
  QUOTA_PERIODS,
  SHIPPED_DEFAULT_PLAN,
} from '../../../contracts/plans';
import { ACCOUNT_SORTS } from '../../accounts/account-directory';
import type { AccountStanding } from '../../accounts/plan-store';
import { ApiError } from '../errors';
import { timestamp } from '../openapi';

/** The shapes of the admin routes' requests and answers (admin.ts), and how a standing is shown. */

export const DEFAULT_ACCOUNTS_PAGE = 50;
export const MAX_ACCOUNTS_PAGE = 100;

export const accountIdParam = z.object({
  accountId: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: 'accountId', in: 'path' }, example: '3f1c9a2e-…' }),
});

// The contract's schemas are plain zod, made before @hono/zod-openapi extends it, so they carry no
// `.openapi()`: they are wrapped in schemas of this module's `z`, which validate the very same.
export const planIdParam = z.object({ planId: planIdSchema });

export const accountsQuery = z.strictObject({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_ACCOUNTS_PAGE)
    .default(DEFAULT_ACCOUNTS_PAGE)
    .openapi({ description: `Accounts per page, at most ${MAX_ACCOUNTS_PAGE}` }),
  cursor: z.string().min(1).max(512).optional().openapi({ description: "The previous page's `next`" }),
  sort: z.enum(ACCOUNT_SORTS).optional().openapi({
    description:
      '`email` (default): by email address, A to Z, case ignored; `-email`: Z to A. Both are read from the accounts index, a page at a time',
  }),
  q: z.string().trim().min(1).max(256).optional().openapi({
    description:
      'Search: the accounts whose email address begins with it (case ignored), and the account whose id it is (exact; first, on the first page)',
    example: 'ada@',
  }),
});

/** A plan's Stripe price: what makes it for sale (`POST /billing/checkout`). */
const planBilling = z.strictObject(billingSchema.shape).optional().openapi('PlanBilling', {
  description:
    'The Stripe price (`price_…`) a subscription to this plan is billed at: owners can buy it with `POST /billing/checkout`, and a paid subscription puts their account on it. Absent: not for sale (a free plan, or one only an admin assigns).',
});

export const planRequest = z
  .strictObject({ ...planBodySchema.shape, billing: planBilling })
  .openapi('PlanRequest', {
    description: 'A plan as a whole: what is left out is no longer part of it',
  });

export const planView = z
  .object(planBodySchema.shape)
  .extend({
    billing: planBilling,
    planId: z.string(),
    updatedAt: timestamp.optional().openapi({
      description: `When it was last saved; absent on the default plan while it was never saved (then as shipped: at most ${SHIPPED_DEFAULT_PLAN.maxKeys} live keys, no rate limit or quota)`,
    }),
  })
  .openapi('Plan');

export const standingView = z
  .object({
    accountId: z.string(),
    planId: z.string().openapi({ description: '`default` when none is assigned' }),
    status: z.enum(ACCOUNT_STATUSES),
  })
  .openapi('AccountStanding');

const periodUsage = z
  .object({
    period: z
      .enum(QUOTA_PERIODS)
      .openapi({ description: "The plan's quota period; `month` without a quota" }),
    used: z.number().int().openapi({ description: 'Requests counted in this period, all keys' }),
    limit: z.number().int().optional().openapi({ description: "The plan's quota; absent without one" }),
    periodStart: timestamp,
    periodEnd: timestamp.openapi({ description: 'When the next period begins (UTC)' }),
  })
  .openapi('PeriodUsage');

export const adminAccountList = z
  .object({
    accounts: z.array(
      z
        .object({
          accountId: z.string(),
          email: z.string(),
          createdAt: timestamp,
          planId: z.string(),
          status: z.enum(ACCOUNT_STATUSES),
          usage: periodUsage,
        })
        .openapi('AdminAccount'),
    ),
    next: z
      .string()
      .optional()
      .openapi({ description: 'Pass as `cursor` for the next page; absent on the last' }),
    asOf: timestamp.openapi({ description: 'When the counters were read' }),
  })
  .openapi('AdminAccountList');

/** A 400 for one query parameter the schema could not judge alone, in the shape of `invalidRequest`'s. */
export function invalidQuery(parameter: string, message: string): ApiError {
  return new ApiError(400, 'invalid_request', `Invalid request: ${parameter}: ${message}`, [
    { path: parameter, message },
  ]);
}

export function standingOut(standing: AccountStanding) {
  return { accountId: standing.accountId, planId: standing.planId, status: standing.status };
}
