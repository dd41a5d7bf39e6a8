import { createRoute, z } from '@hono/zod-openapi';
import type { ValidationTargets } from 'hono';
import {
  ACCOUNT_STATUSES,
  type AccountStatus,
  DEFAULT_PLAN_ID,
  periodBounds,
  planBodySchema,
  planIdSchema,
  QUOTA_PERIODS,
  SHIPPED_DEFAULT_PLAN,
} from '../../../contracts/plans';
import type { AccountStanding } from '../../accounts/plan-store';
import { requireRecentSignIn } from '../auth';
import type { UserApiDeps } from '../env';
import { invalidRequest, notFound } from '../errors';
import { describedErrorResponses, json, requiresIdToken, router, timestamp } from '../openapi';

/**
 * The SaaS owner's admin surface: accounts with their plan, status and usage this period; the
 * plans; assigning a plan; suspending and resuming an account. Only members of the admins group
 * reach it (requireAdmin, mounted on `/admin/*` in app.ts). Every operation names the account it
 * acts on in its path: the caller's own account is used for nothing but that check.
 */

export const DEFAULT_ACCOUNTS_PAGE = 50;
export const MAX_ACCOUNTS_PAGE = 100;

const tags = ['Admin'];
const adminOnly = 'Only for members of the Cognito group `admins`; anyone else gets 403 `forbidden`.';

/** What the admin changes (every method but GET) say of their 401s: they need a recent sign-in. */
const CHANGE_401 = {
  401: 'No valid Cognito ID token (`unauthorized`), or a valid one whose sign-in (`auth_time`) is older than the deployment allows for changes, 15 minutes by default (`reauthentication_required`, with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`): sign in again, then retry; nothing was changed',
};
/** Methods that change nothing: the only ones an admin's older sign-in may still use. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const accountIdParam = z.object({
  accountId: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: 'accountId', in: 'path' }, example: '3f1c9a2e-…' }),
});

// The contract's schemas are plain zod, made before @hono/zod-openapi extends it, so they carry no
// `.openapi()`: they are wrapped in schemas of this module's `z`, which validate the very same.
const planIdParam = z.object({ planId: planIdSchema });

const accountsQuery = z.strictObject({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_ACCOUNTS_PAGE)
    .default(DEFAULT_ACCOUNTS_PAGE)
    .openapi({ description: `Accounts per page, at most ${MAX_ACCOUNTS_PAGE}` }),
  cursor: z.string().min(1).max(256).optional().openapi({ description: "The previous page's `next`" }),
});

const planRequest = z.strictObject(planBodySchema.shape).openapi('PlanRequest', {
  description: 'A plan as a whole: what is left out is no longer part of it',
});

const planView = z
  .object(planBodySchema.shape)
  .extend({
    planId: z.string(),
    updatedAt: timestamp.optional().openapi({
      description: `When it was last saved; absent on the default plan while it was never saved (then as shipped: at most ${SHIPPED_DEFAULT_PLAN.maxKeys} live keys, no rate limit or quota)`,
    }),
  })
  .openapi('Plan');

const standingView = z
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

const adminAccountList = z
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

const notFoundAccount = { 404: 'No such account' };

const listAccounts = createRoute({
  method: 'get',
  path: '/accounts',
  tags,
  summary: 'Accounts, with their plan, status and usage this period',
  description: `${adminOnly} One page of accounts, in no particular order.`,
  security: requiresIdToken,
  request: { query: accountsQuery },
  responses: {
    200: json(adminAccountList, 'One page of accounts'),
    ...describedErrorResponses({}, 400, 403),
  },
});

const listPlans = createRoute({
  method: 'get',
  path: '/plans',
  tags,
  summary: 'The plans',
  description: `${adminOnly} Always includes \`default\`, the plan of accounts without one assigned.`,
  security: requiresIdToken,
  responses: {
    200: json(z.object({ plans: z.array(planView) }).openapi('PlanList'), 'Every plan, by id'),
    ...describedErrorResponses({}, 403),
  },
});

const putPlan = createRoute({
  method: 'put',
  path: '/plans/{planId}',
  tags,
  summary: 'Create or replace a plan',
  description: `${adminOnly} Accounts on the plan are held to the new terms at once (the gate within its cache window).`,
  security: requiresIdToken,
  request: {
    params: planIdParam,
    body: { content: { 'application/json': { schema: planRequest } }, required: true },
  },
  responses: {
    200: json(planView, 'The plan, replaced'),
    201: json(planView, 'The plan, created'),
    ...describedErrorResponses(CHANGE_401, 400, 403, 413, 415),
  },
});

const assignPlan = createRoute({
  method: 'put',
  path: '/accounts/{accountId}/plan',
  tags,
  summary: "Set an account's plan",
  description: `${adminOnly} \`default\` always exists; any other plan must have been saved first.`,
  security: requiresIdToken,
  request: {
    params: accountIdParam,
    body: {
      content: {
        'application/json': {
          schema: z.strictObject({ planId: planIdSchema }).openapi('AssignPlanRequest'),
        },
      },
      required: true,
    },
  },
  responses: {
    200: json(standingView, "The account's standing, on its new plan"),
    ...describedErrorResponses(
      { ...CHANGE_401, 404: 'No such account, or no such plan' },
      400,
      403,
      404,
      413,
      415,
    ),
  },
});

const statusRoute = (action: 'suspend' | 'resume') =>
  createRoute({
    method: 'post',
    path: `/accounts/{accountId}/${action}`,
    tags,
    summary: action === 'suspend' ? 'Suspend an account' : 'Resume a suspended account',
    description:
      action === 'suspend'
        ? `${adminOnly} Its keys are refused (403 \`account_suspended\`) within the key cache's fresh window; its keys and usage are kept.`
        : `${adminOnly} Its keys work again within the key cache's fresh window.`,
    security: requiresIdToken,
    request: { params: accountIdParam },
    responses: {
      200: json(standingView, "The account's standing"),
      ...describedErrorResponses({ ...CHANGE_401, ...notFoundAccount }, 403, 404),
    },
  });

/**
 * An account id that fails its schema cannot exist: a 404, as for keys. Any other failure (a body,
 * a query) is the 400 of `validationHook`, thrown to onError, which answers it the same.
 */
function accountHook(
  result: { target: keyof ValidationTargets } & ({ success: true } | { success: false; error: z.ZodError }),
): undefined {
  if (result.success) return undefined;
  throw result.target === 'param' ? notFound('account') : invalidRequest(result.error);
}

function standingOut(standing: AccountStanding) {
  return { accountId: standing.accountId, planId: standing.planId, status: standing.status };
}

export function adminRoutes(deps: UserApiDeps) {
  // Who the customers are and what they use: `no-store`, as every answer of user-api (app.ts).
  const app = router();
  // Every change (any method but a read, routes to come included) first requires a recent sign-in,
  // as minting a key does: before the body is read, so a refused change changes nothing.
  app.use(async (c, next) => {
    if (!READ_METHODS.has(c.req.method)) {
      requireRecentSignIn(c, deps.signInMaxAgeMs, deps.clock.now(), 'Changing plans or accounts');
    }
    await next();
  });

  /** Sets the status, then answers the account's standing as it now is (404 when there is none). */
  const setStatus = async (accountId: string, status: AccountStatus) => {
    if (!(await deps.plans.setStatus(accountId, status, deps.clock.now()))) throw notFound('account');
    const standing = await deps.plans.standing(accountId, { consistent: true });
    if (!standing) throw notFound('account');
    return standingOut(standing);
  };

  return app
    .openapi(listAccounts, async (c) => {
      const { limit, cursor } = c.req.valid('query');
      const asOf = deps.clock.now();
      const [page, plans] = await Promise.all([
        deps.plans.listAccounts({ limit, ...(cursor ? { cursor } : {}) }),
        deps.plans.listPlans(),
      ]);
      const quotas = new Map(plans.map((plan) => [plan.planId, plan.quota]));
      const accounts = await Promise.all(
        page.accounts.map(async (account) => {
          const quota = quotas.get(account.planId);
          const period = quota?.period ?? 'month';
          const { start, end } = periodBounds(period, asOf);
          const used = await deps.usage.usedInPeriod(account.accountId, period, asOf);
          return {
            accountId: account.accountId,
            email: account.email,
            createdAt: account.createdAt,
            planId: account.planId,
            status: account.status,
            usage: {
              period,
              used,
              ...(quota ? { limit: quota.requests } : {}),
              periodStart: start.toISOString(),
              periodEnd: end.toISOString(),
            },
          };
        }),
      );
      return c.json({ accounts, ...(page.next ? { next: page.next } : {}), asOf: asOf.toISOString() }, 200);
    })
    .openapi(listPlans, async (c) => {
      const plans = await deps.plans.listPlans();
      const all = plans.some((plan) => plan.planId === DEFAULT_PLAN_ID)
        ? plans
        : [SHIPPED_DEFAULT_PLAN, ...plans];
      return c.json({ plans: all.sort((a, b) => a.planId.localeCompare(b.planId)) }, 200);
    })
    .openapi(putPlan, async (c) => {
      const { planId } = c.req.valid('param');
      const { created, plan } = await deps.plans.putPlan(planId, c.req.valid('json'), deps.clock.now());
      return created ? c.json(plan, 201) : c.json(plan, 200);
    })
    .openapi(
      assignPlan,
      async (c) => {
        const { accountId } = c.req.valid('param');
        const { planId } = c.req.valid('json');
        if (planId !== DEFAULT_PLAN_ID && !(await deps.plans.getPlan(planId))) throw notFound('plan');
        if (!(await deps.plans.assignPlan(accountId, planId))) throw notFound('account');
        const standing = await deps.plans.standing(accountId, { consistent: true });
        if (!standing) throw notFound('account');
        return c.json(standingOut(standing), 200);
      },
      accountHook,
    )
    .openapi(
      statusRoute('suspend'),
      async (c) => c.json(await setStatus(c.req.valid('param').accountId, 'suspended'), 200),
      accountHook,
    )
    .openapi(
      statusRoute('resume'),
      async (c) => c.json(await setStatus(c.req.valid('param').accountId, 'active'), 200),
      accountHook,
    );
}
