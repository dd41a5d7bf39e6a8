import { createRoute, z } from '@hono/zod-openapi';
import { ADMIN_GROUP } from '../../../contracts/plans';
import type { UserApiDeps } from '../env';
import { errorResponses, json, requiresIdToken, router, timestamp } from '../openapi';

const account = z
  .object({
    userId: z.string(),
    email: z.string(),
    createdAt: timestamp,
    isAdmin: z.boolean().openapi({
      description: `Whether the signed-in user is one of the owner's admins (Cognito group \`${ADMIN_GROUP}\`), who may use \`/admin\``,
    }),
  })
  .openapi('Account', { description: "The signed-in owner's account" });

const getMe = createRoute({
  method: 'get',
  path: '/',
  tags: ['Account'],
  summary: "The signed-in owner's account",
  description: 'Provisions the account on the first visit if the sign-up trigger never ran.',
  security: requiresIdToken,
  responses: { 200: json(account, 'The account'), ...errorResponses(409) },
});

export function meRoutes(deps: UserApiDeps) {
  return router().openapi(getMe, async (c) => {
    const user = c.get('user');
    let account = await deps.store.getAccount(user.userId);
    if (!account) {
      // Cognito confirms a user before its PostConfirmation trigger runs, so a failed trigger
      // leaves a signed-in user without an account. Provisioning is idempotent: finish it here.
      ({ account } = await deps.store.provisionAccount({
        accountId: user.userId,
        email: user.email,
        userName: user.userName,
        now: deps.clock.now(),
      }));
      deps.logger.warn('account provisioned on first visit: the sign-up trigger had not run', {
        accountId: user.userId,
      });
    }
    return c.json(
      {
        userId: account.accountId,
        email: account.email,
        createdAt: account.createdAt,
        // From the verified token's groups, as requireAdmin decides: a hint for the page, never a grant.
        isAdmin: user.groups?.includes(ADMIN_GROUP) ?? false,
      },
      200,
    );
  });
}
