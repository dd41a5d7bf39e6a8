import { createRoute } from '@hono/zod-openapi';
import type { UserApiDeps } from '../env';
import { notFound } from '../errors';
import { errorResponses, requiresIdToken, router } from '../openapi';
import { answerUsage } from '../usage-answer';
import { accountIdParam } from './admin-schemas';
import { csvBody, respondUsage, usageAnswer, usageQuery } from './usage';

/**
 * Any account's usage for the owner's admins: the very answer GET /usage gives that account's owner
 * (same query, same JSON and CSV), in the account's own time zone unless `tz` says another. Mounted
 * under `/admin`, behind requireAdmin (app.ts).
 */
const getAccountUsage = createRoute({
  method: 'get',
  path: '/accounts/{accountId}/usage',
  tags: ['Admin'],
  summary: "An account's usage, as its owner sees it",
  description:
    'Only for members of the Cognito group `admins`; anyone else gets 403 `forbidden`. The parameters and answer of `GET /usage`.',
  security: requiresIdToken,
  request: { params: accountIdParam, query: usageQuery },
  responses: {
    200: {
      description: '`Usage`, or its CSV',
      content: { 'application/json': { schema: usageAnswer }, ...csvBody },
    },
    ...errorResponses(400, 403, 404),
  },
});

export function adminUsageRoutes(deps: UserApiDeps) {
  return router().openapi(getAccountUsage, async (c) => {
    const { accountId } = c.req.valid('param');
    if (!(await deps.store.getAccount(accountId))) throw notFound('account');
    const { format, ...query } = c.req.valid('query');
    return respondUsage(c, await answerUsage(deps, accountId, query), format);
  });
}
