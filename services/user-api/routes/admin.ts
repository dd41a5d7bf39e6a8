import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler, ValidationTargets } from 'hono';
import {
  type AccountStatus,
  DEFAULT_PLAN_ID,
  periodBounds,
  planIdSchema,
  type QuotaPeriod,
  SHIPPED_DEFAULT_PLAN,
} from '../../../contracts/plans';
import { utcDay } from '../../../contracts/usage-event';
import { InvalidCursorError } from '../../accounts/account-directory';
import { requireRecentSignIn } from '../auth';
import type { UserApiDeps, UserApiEnv } from '../env';
import { invalidRequest, notFound } from '../errors';
import { describedErrorResponses, json, type OperationHandler, requiresIdToken, router } from '../openapi';
import { adminReportRoutes } from './admin-reports';
import {
  accountIdParam,
  accountsQuery,
  adminAccountList,
  invalidQuery,
  planIdParam,
  planRequest,
  planView,
  standingOut,
  standingView,
} from './admin-schemas';

/**
 * The SaaS owner's admin surface: accounts with their plan, status and usage this period; the
 * plans; assigning a plan; suspending and resuming an account. Only members of the admins group
 * reach it (requireAdmin, mounted on `/admin/*` in app.ts). Every operation names the account it
 * acts on in its path: the caller's own account is used for nothing but that check.
 */

const tags = ['Admin'];
const adminOnly = 'Only for members of the Cognito group `admins`; anyone else gets 403 `forbidden`.';

/** What the admin changes (every method but GET) say of their 401s: they need a recent sign-in. */
const CHANGE_401 = {
  401: 'No valid Cognito ID token (`unauthorized`), or a valid one whose sign-in (`auth_time`) is older than the deployment allows for changes, 15 minutes by default (`reauthentication_required`, with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`): sign in again, then retry; nothing was changed',
};
/** Methods that change nothing: the only ones an admin's older sign-in may still use. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const notFoundAccount = { 404: 'No such account' };

const listAccounts = createRoute({
  method: 'get',
  path: '/accounts',
  tags,
  summary: 'Accounts, with their plan, status and usage this period',
  description: `${adminOnly} One page of accounts, by email address (\`sort\`), or those a search (\`q\`) finds. A page reads that many entries of the accounts index and that page's usage (one BatchGetItem), never every account.`,
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

export function adminRoutes(deps: UserApiDeps) {
  // Who the customers are and what they use: `no-store`, as every answer of user-api (app.ts).
  const app = router();
  app.use(recentSignInForChanges(deps));
  return app
    .openapi(listAccounts, listAccountsHandler(deps))
    .openapi(listPlans, listPlansHandler(deps))
    .openapi(putPlan, putPlanHandler(deps))
    .openapi(assignPlan, assignPlanHandler(deps), accountHook)
    .openapi(statusRoute('suspend'), statusHandler(deps, 'suspended'), accountHook)
    .openapi(statusRoute('resume'), statusHandler(deps, 'active'), accountHook)
    .route('/usage', adminReportRoutes(deps));
}

/**
 * Every change (any method but a read, routes to come included) first requires a recent sign-in,
 * as minting a key does: before the body is read, so a refused change changes nothing.
 */
function recentSignInForChanges(deps: UserApiDeps): MiddlewareHandler<UserApiEnv> {
  return async (c, next) => {
    if (!READ_METHODS.has(c.req.method)) {
      requireRecentSignIn(c, deps.signInMaxAgeMs, deps.clock.now(), 'Changing plans or accounts');
    }
    await next();
  };
}

function listAccountsHandler(deps: UserApiDeps): OperationHandler<typeof listAccounts> {
  return async (c) => {
    const { limit, cursor, sort, q } = c.req.valid('query');
    const asOf = deps.clock.now();
    const [page, plans] = await Promise.all([
      deps.plans
        .listAccounts({
          limit,
          ...(cursor ? { cursor } : {}),
          ...(sort ? { sort } : {}),
          ...(q ? { q } : {}),
        })
        .catch((error: unknown) => {
          if (error instanceof InvalidCursorError) throw invalidQuery('cursor', 'not a `next` of this list');
          throw error;
        }),
      deps.plans.listPlans(),
    ]);
    const quotas = new Map(plans.map((plan) => [plan.planId, plan.quota]));
    const used = await pageUsage(deps, page.accounts, quotas, asOf);
    const accounts = page.accounts.map((account) => {
      const quota = quotas.get(account.planId);
      const period = quota?.period ?? 'month';
      const { start, end } = periodBounds(period, asOf);
      return {
        accountId: account.accountId,
        email: account.email,
        createdAt: account.createdAt,
        planId: account.planId,
        status: account.status,
        usage: {
          period,
          used: used.get(account.accountId) ?? 0,
          ...(quota ? { limit: quota.requests } : {}),
          periodStart: start.toISOString(),
          periodEnd: end.toISOString(),
        },
      };
    });
    return c.json({ accounts, ...(page.next ? { next: page.next } : {}), asOf: asOf.toISOString() }, 200);
  };
}

/**
 * Each listed account's usage in its plan's period (today or this UTC month), read for this page's
 * accounts only: one BatchGetItem of their account-period items (MonthReport.accountMonths, today's
 * day attribute and the month's total), or without the reports one read per account.
 */
async function pageUsage(
  deps: UserApiDeps,
  accounts: ReadonlyArray<{ accountId: string; planId: string }>,
  quotas: ReadonlyMap<string, { period: QuotaPeriod } | undefined>,
  asOf: Date,
): Promise<Map<string, number>> {
  const periodOf = (planId: string): QuotaPeriod => quotas.get(planId)?.period ?? 'month';
  if (!deps.adminReports) {
    const counts = await Promise.all(
      accounts.map((a) => deps.usage.usedInPeriod(a.accountId, periodOf(a.planId), asOf)),
    );
    return new Map(accounts.map((a, i) => [a.accountId, counts[i] ?? 0]));
  }
  const today = utcDay(asOf.getTime());
  const months = await deps.adminReports.months.accountMonths(
    accounts.map((a) => a.accountId),
    today.slice(0, 7),
    { days: [today] },
  );
  return new Map(
    accounts.map((a) => {
      const month = months.get(a.accountId);
      const used = periodOf(a.planId) === 'day' ? month?.days.get(today) : month?.requests;
      return [a.accountId, used ?? 0];
    }),
  );
}

function listPlansHandler(deps: UserApiDeps): OperationHandler<typeof listPlans> {
  return async (c) => {
    const plans = await deps.plans.listPlans();
    const all = plans.some((plan) => plan.planId === DEFAULT_PLAN_ID)
      ? plans
      : [SHIPPED_DEFAULT_PLAN, ...plans];
    return c.json({ plans: all.sort((a, b) => a.planId.localeCompare(b.planId)) }, 200);
  };
}

function putPlanHandler(deps: UserApiDeps): OperationHandler<typeof putPlan> {
  return async (c) => {
    const { planId } = c.req.valid('param');
    const { created, plan } = await deps.plans.putPlan(planId, c.req.valid('json'), deps.clock.now());
    return created ? c.json(plan, 201) : c.json(plan, 200);
  };
}

function assignPlanHandler(deps: UserApiDeps): OperationHandler<typeof assignPlan> {
  return async (c) => {
    const { accountId } = c.req.valid('param');
    const { planId } = c.req.valid('json');
    if (planId !== DEFAULT_PLAN_ID && !(await deps.plans.getPlan(planId))) throw notFound('plan');
    if (!(await deps.plans.assignPlan(accountId, planId))) throw notFound('account');
    const standing = await deps.plans.standing(accountId, { consistent: true });
    if (!standing) throw notFound('account');
    return c.json(standingOut(standing), 200);
  };
}

/** Sets the status, then answers the account's standing as it now is (404 when there is none). */
function statusHandler(
  deps: UserApiDeps,
  status: AccountStatus,
): OperationHandler<ReturnType<typeof statusRoute>> {
  return async (c) => {
    const { accountId } = c.req.valid('param');
    if (!(await deps.plans.setStatus(accountId, status, deps.clock.now()))) throw notFound('account');
    const standing = await deps.plans.standing(accountId, { consistent: true });
    if (!standing) throw notFound('account');
    return c.json(standingOut(standing), 200);
  };
}
