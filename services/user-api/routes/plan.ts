import { createRoute, z } from '@hono/zod-openapi';
import {
  ACCOUNT_STATUSES,
  DEFAULT_PLAN_ID,
  DEFAULT_PLAN_MAX_KEYS,
  periodBounds,
  QUOTA_PERIODS,
} from '../../../contracts/plans';
import { isLiveKey } from '../../accounts/records';
import type { UserApiDeps } from '../env';
import { notFound } from '../errors';
import { describedErrorResponses, json, requiresIdToken, router, timestamp } from '../openapi';

/**
 * `GET /me/plan`: the signed-in owner's own plan and where the account stands against each of its
 * limits, so the page can say what is used and left before the gate says 429. It reads what the
 * gate enforces from (the plan, the exact counters, the keys), never another account's.
 */

/** The name of the default plan while the owner never saved one (then it has no limits). */
export const IMPLICIT_DEFAULT_NAME = 'Default';

const quotaStanding = z
  .object({
    requests: z.number().int().openapi({ description: 'Requests allowed per period, all keys' }),
    period: z.enum(QUOTA_PERIODS).openapi({ description: 'A UTC calendar day or month' }),
    used: z.number().int().openapi({ description: 'Requests counted in this period, all keys' }),
    remaining: z.number().int().openapi({ description: '`requests - used`, never below 0' }),
    resetsAt: timestamp.openapi({ description: 'When the next period begins (UTC)' }),
  })
  .openapi('QuotaStanding');

const myPlan = z
  .object({
    planId: z.string().openapi({ description: '`default` when none is assigned' }),
    name: z.string(),
    status: z.enum(ACCOUNT_STATUSES).openapi({ description: "`suspended`: the account's keys are refused" }),
    quota: quotaStanding.optional().openapi({ description: 'Absent: no quota' }),
    rateLimit: z
      .object({
        requests: z.number().int(),
        perSeconds: z.number().int(),
        scope: z
          .enum(['key', 'account'])
          .openapi({ description: 'Counted per key or for the whole account' }),
      })
      .optional()
      .openapi({ description: 'Absent: no rate limit' }),
    maxKeys: z
      .object({
        limit: z.number().int().openapi({ description: 'Live keys the plan allows at once' }),
        live: z.number().int().openapi({ description: 'Live keys now: active, pending or expiring' }),
      })
      .optional()
      .openapi({ description: 'Absent: no limit on keys' }),
    asOf: timestamp.openapi({ description: 'When the counters were read' }),
  })
  .openapi('MyPlan', { description: "The signed-in owner's plan and where the account stands against it" });

const getMyPlan = createRoute({
  method: 'get',
  path: '/',
  tags: ['Account'],
  summary: "The signed-in owner's plan, and what is used and left of each limit",
  description: `Accounts without an assigned plan are on \`default\`, which allows at most ${DEFAULT_PLAN_MAX_KEYS} live keys and sets no rate limit or quota until the owner saves it. \`used\` counts this UTC day or month, as the quota does.`,
  security: requiresIdToken,
  responses: {
    200: json(myPlan, 'The plan and its standing'),
    ...describedErrorResponses({ 404: 'No account yet: `GET /me` provisions it' }, 404),
  },
});

export function planRoutes(deps: UserApiDeps) {
  // Live figures of one account: `no-store`, as every answer of user-api (app.ts).
  return router().openapi(getMyPlan, async (c) => {
    const accountId = c.get('user').userId;
    const asOf = deps.clock.now();
    const terms = await deps.plans.accountPlan(accountId);
    if (!terms) throw notFound('account');
    const { standing, plan } = terms;
    const { quota, rateLimit, maxKeys } = plan ?? {};

    const [used, live] = await Promise.all([
      // The quota period's usage as the gate counts it (UsageReader.usedInPeriod, periodBounds).
      quota ? deps.usage.usedInPeriod(accountId, quota.period, asOf) : undefined,
      maxKeys === undefined
        ? undefined
        : deps.store.listKeys(accountId).then((keys) => keys.filter((key) => isLiveKey(key, asOf)).length),
    ]);

    return c.json(
      {
        planId: standing.planId,
        // A plan that was assigned and no longer exists has no limits (as the gate treats it).
        name: plan?.name ?? (standing.planId === DEFAULT_PLAN_ID ? IMPLICIT_DEFAULT_NAME : standing.planId),
        status: standing.status,
        ...(quota && used !== undefined
          ? {
              quota: {
                requests: quota.requests,
                period: quota.period,
                used,
                remaining: Math.max(0, quota.requests - used),
                resetsAt: periodBounds(quota.period, asOf).end.toISOString(),
              },
            }
          : {}),
        ...(rateLimit
          ? {
              rateLimit: {
                requests: rateLimit.requests,
                perSeconds: rateLimit.perSeconds,
                scope: rateLimit.scope,
              },
            }
          : {}),
        ...(maxKeys !== undefined && live !== undefined ? { maxKeys: { limit: maxKeys, live } } : {}),
        asOf: asOf.toISOString(),
      },
      200,
    );
  });
}
