import { Hono } from 'hono';
import type { UserApiDeps, UserApiEnv } from '../env';
import { notFound } from '../errors';

export function meRoutes(deps: UserApiDeps) {
  return new Hono<UserApiEnv>().get('/', async (c) => {
    const user = c.get('user');
    const account = await deps.store.getAccount(user.userId);
    if (!account) throw notFound('account');
    return c.json({ userId: account.accountId, email: account.email, createdAt: account.createdAt });
  });
}
