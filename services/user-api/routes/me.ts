import { createRoute, z } from '@hono/zod-openapi';
import { ADMIN_GROUP } from '../../../contracts/plans';
import type { UserApiDeps } from '../env';
import { notFound } from '../errors';
import { errorResponses, json, requiresIdToken, router, timestamp } from '../openapi';
import { timeZoneField } from './usage';

const account = z
  .object({
    userId: z.string(),
    email: z.string(),
    createdAt: timestamp,
    isAdmin: z.boolean().openapi({
      description: `Whether the signed-in user is one of the owner's admins (Cognito group \`${ADMIN_GROUP}\`), who may use \`/admin\``,
    }),
    timeZone: z.string().openapi({
      description: "The zone usage is answered in (IANA name): the owner's choice, else the deployment's",
      example: 'Europe/Paris',
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

const settings = z
  .strictObject({ timeZone: timeZoneField.openapi({ example: 'America/New_York' }) })
  .openapi('AccountSettings');

const patchMe = createRoute({
  method: 'patch',
  path: '/',
  tags: ['Account'],
  summary: "Change the account's settings: its time zone",
  security: requiresIdToken,
  request: { body: { content: { 'application/json': { schema: settings } }, required: true } },
  responses: { 200: json(settings, 'The settings as saved'), ...errorResponses(400, 404) },
});

export function meRoutes(deps: UserApiDeps) {
  return router()
    .openapi(patchMe, async (c) => {
      const { timeZone } = c.req.valid('json');
      if (!(await deps.store.setTimeZone(c.get('user').userId, timeZone))) throw notFound('account');
      return c.json({ timeZone }, 200);
    })
    .openapi(getMe, async (c) => {
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
          timeZone: account.timeZone ?? deps.defaultTimeZone ?? 'UTC',
        },
        200,
      );
    });
}
