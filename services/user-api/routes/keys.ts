import { zValidator } from '@hono/zod-validator';
import { Hono } from 'hono';
import { z } from 'zod';
import { effectiveStatus, type KeyMutationResult, type KeyRecord } from '../../shared/key-store';
import type { UserApiDeps, UserApiEnv } from '../env';
import { ApiError, notFound, validationHook } from '../errors';

const MAX_GRACE_SECONDS = 30 * 24 * 3600;
const DEFAULT_KEY_NAME = 'API key';

const createKeyBody = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(64, 'at most 64 characters').optional(),
});

const rollKeyBody = z.strictObject({
  /** Overrides the default grace period for this roll; 0 ends the old key now. */
  gracePeriodSeconds: z.number().int().min(0).max(MAX_GRACE_SECONDS).optional(),
});

// Ids Tollgate mints; anything else cannot exist, so it is answered like an unknown id.
const keyIdParam = z.object({ id: z.string().regex(/^key_[A-Za-z0-9_]{1,100}$/) });

function unwrap<T>(result: KeyMutationResult<T>, action: string): T {
  if (result.ok) return result.value;
  if (result.reason === 'not_found') throw notFound();
  throw new ApiError(409, 'conflict', `Cannot ${action} a key that is ${result.status}`, {
    status: result.status,
  });
}

/** A key as its owner sees it: never the hash, never the secret. */
function view(key: KeyRecord, now: Date) {
  return {
    id: key.keyId,
    name: key.name,
    start: key.start ?? null,
    status: effectiveStatus(key, now),
    createdAt: key.createdAt,
    ...(key.expiresAt ? { expiresAt: key.expiresAt } : {}),
    ...(key.revokedAt ? { revokedAt: key.revokedAt } : {}),
    ...(key.replacedBy ? { replacedBy: key.replacedBy } : {}),
  };
}

/** The one answer that carries a secret: on create, reveal and roll. */
function issued(key: KeyRecord, secret: string) {
  return { id: key.keyId, key: secret, name: key.name, start: key.start ?? null, createdAt: key.createdAt };
}

export function keyRoutes(deps: UserApiDeps) {
  const param = zValidator('param', keyIdParam, (result) => {
    if (!result.success) throw notFound();
  });
  return new Hono<UserApiEnv>()
    .use(async (c, next) => {
      // Key answers carry secrets (create, reveal, roll) or what an owner manages them by: never
      // kept by a browser or proxy cache.
      await next();
      c.header('cache-control', 'no-store');
    })
    .get('/', async (c) => {
      const now = deps.clock.now();
      const accountId = c.get('user').userId;
      const [keys, totals] = await Promise.all([
        deps.store.listKeys(accountId),
        deps.usage.keyTotals(accountId),
      ]);
      return c.json({
        keys: keys.map((key) => {
          const usage = totals.get(key.keyId);
          return { ...view(key, now), count: usage?.count ?? 0, lastUsedAt: usage?.lastUsedAt ?? null };
        }),
      });
    })
    .post('/', zValidator('json', createKeyBody, validationHook), async (c) => {
      const { name } = c.req.valid('json');
      const created = await deps.store.createKey({
        accountId: c.get('user').userId,
        name: name ?? DEFAULT_KEY_NAME,
        now: deps.clock.now(),
      });
      if (!created.ok) throw notFound('account');
      return c.json(issued(created.value.record, created.value.secret.key), 201);
    })
    .post('/:id/reveal', param, async (c) => {
      const revealed = unwrap(
        await deps.store.revealKey({
          accountId: c.get('user').userId,
          keyId: c.req.valid('param').id,
          now: deps.clock.now(),
        }),
        'reveal',
      );
      return c.json(issued(revealed.record, revealed.secret.key), 201);
    })
    .post('/:id/roll', param, zValidator('json', rollKeyBody, validationHook), async (c) => {
      const { gracePeriodSeconds } = c.req.valid('json');
      const rolled = unwrap(
        await deps.store.rollKey({
          accountId: c.get('user').userId,
          keyId: c.req.valid('param').id,
          graceMs: gracePeriodSeconds === undefined ? deps.rollGraceMs : gracePeriodSeconds * 1000,
          now: deps.clock.now(),
        }),
        'roll',
      );
      return c.json(
        {
          ...issued(rolled.record, rolled.secret.key),
          previous: {
            id: rolled.previous.keyId,
            status: 'expiring' as const,
            expiresAt: rolled.previous.expiresAt,
          },
        },
        201,
      );
    })
    .delete('/:id', param, async (c) => {
      const now = deps.clock.now();
      const revoked = unwrap(
        await deps.store.revokeKey({ accountId: c.get('user').userId, keyId: c.req.valid('param').id, now }),
        'revoke',
      );
      return c.json(view(revoked, now));
    });
}
