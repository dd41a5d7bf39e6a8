import { Hono } from 'hono';
import type { UserApiDeps, UserApiEnv } from '../env';

export function meRoutes(deps: UserApiDeps) {
  return new Hono<UserApiEnv>().get('/', async (c) => {
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
    return c.json({ userId: account.accountId, email: account.email, createdAt: account.createdAt });
  });
}
