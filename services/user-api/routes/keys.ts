import { createRoute, type z } from '@hono/zod-openapi';
import type { ValidationTargets } from 'hono';
import type { KeyMutationResult } from '../../accounts/records';
import { requireRecentSignIn } from '../auth';
import type { UserApiDeps } from '../env';
import { ApiError, invalidRequest, notFound } from '../errors';
import {
  describedErrorResponses,
  errorResponses,
  json,
  type OperationHandler,
  requiresIdToken,
  router,
} from '../openapi';
import {
  createKeyBody,
  issued,
  issuedKey,
  keyIdParam,
  keyList,
  keyView,
  rolledKey,
  rollKeyBody,
  view,
} from './key-schemas';

const DEFAULT_KEY_NAME = 'API key';

const tags = ['Keys'];

/** What the minting operations (create, reveal, roll) say of their 401s. */
const MINTING_401 = {
  401: 'No valid Cognito ID token (`unauthorized`), or a valid one whose sign-in (`auth_time`) is older than the deployment allows for minting, 15 minutes by default (`reauthentication_required`, with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`): sign in again, then retry',
};
const MINTING_NOTE =
  ' Mints a secret, so it needs a recent sign-in: a token whose `auth_time` is older than the deployment allows (15 minutes by default) is refused with 401 `reauthentication_required`, and nothing is minted.';

const listKeys = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: "The account's keys, with their usage",
  security: requiresIdToken,
  responses: { 200: json(keyList, 'Every key of the account'), ...errorResponses() },
});

const createKey = createRoute({
  method: 'post',
  path: '/',
  tags,
  summary: 'Create a key',
  description: `Refused with 409 \`key_limit_reached\` when the account already holds its plan's \`maxKeys\` live keys (active, pending or expiring).${MINTING_NOTE}`,
  security: requiresIdToken,
  request: { body: { content: { 'application/json': { schema: createKeyBody } } } },
  responses: {
    201: json(issuedKey, 'The new key, its secret shown this once'),
    ...describedErrorResponses(MINTING_401, 400, 404, 409, 413, 415),
  },
});

const revealKey = createRoute({
  method: 'post',
  path: '/{id}/reveal',
  tags,
  summary: 'Reveal the key made at sign-up',
  description: `Mints the secret of a \`pending\` key, once; any other key is a 409.${MINTING_NOTE}`,
  security: requiresIdToken,
  request: { params: keyIdParam },
  responses: {
    201: json(issuedKey, 'The key, its secret shown this once'),
    ...describedErrorResponses(MINTING_401, 404, 409),
  },
});

const rollKey = createRoute({
  method: 'post',
  path: '/{id}/roll',
  tags,
  summary: 'Replace a key by a new one',
  description: `The old key becomes \`expiring\` and keeps working until \`previous.expiresAt\`. A key keeps at most one expiring predecessor: rolling a key whose own predecessor is still expiring ends that older key's grace now. The new key counts against the plan's \`maxKeys\` (409 \`key_limit_reached\`).${MINTING_NOTE}`,
  security: requiresIdToken,
  request: { params: keyIdParam, body: { content: { 'application/json': { schema: rollKeyBody } } } },
  responses: {
    201: json(rolledKey, 'The new key, its secret shown this once, and the old one'),
    ...describedErrorResponses(MINTING_401, 400, 404, 409, 413, 415),
  },
});

const revokeKey = createRoute({
  method: 'delete',
  path: '/{id}',
  tags,
  summary: 'Revoke a key',
  security: requiresIdToken,
  request: { params: keyIdParam },
  responses: { 200: json(keyView, 'The key, now `revoked`'), ...errorResponses(404, 409) },
});

/**
 * The hook of the routes with a key id: an id that fails its schema cannot exist, so it is an
 * unknown key (404); any other failure is the 400 that `validationHook` answers, thrown to onError,
 * which answers it with the same status and body.
 */
function keyHook(
  result: { target: keyof ValidationTargets } & ({ success: true } | { success: false; error: z.ZodError }),
): undefined {
  if (result.success) return undefined;
  throw result.target === 'param' ? notFound() : invalidRequest(result.error);
}

function unwrap<T>(result: KeyMutationResult<T>, action: string): T {
  if (result.ok) return result.value;
  switch (result.reason) {
    case 'not_found':
      throw notFound();
    case 'key_limit':
      throw keyLimitReached(result.limit, result.live);
    case 'conflict':
      throw new ApiError(409, 'conflict', `Cannot ${action} a key that is ${result.status}`, {
        status: result.status,
      });
  }
}

function keyLimitReached(limit: number, live: number): ApiError {
  return new ApiError(
    409,
    'key_limit_reached',
    `This account's plan allows at most ${limit} live ${limit === 1 ? 'key' : 'keys'} (active, pending or expiring) and it holds ${live}: revoke one first`,
    { limit, live },
  );
}

/**
 * The key routes. Every answer is `no-store` (app.ts), the secrets of create, reveal and roll above
 * all. Those three mint a secret, so each first requires a recent sign-in (requireRecentSignIn): a
 * stolen token can read and revoke for its lifetime, but mint only shortly after its owner signed in.
 */
export function keyRoutes(deps: UserApiDeps) {
  return router()
    .openapi(listKeys, listHandler(deps))
    .openapi(createKey, createHandler(deps))
    .openapi(revealKey, revealHandler(deps), keyHook)
    .openapi(rollKey, rollHandler(deps), keyHook)
    .openapi(revokeKey, revokeHandler(deps), keyHook);
}

function recentSignIn(c: Parameters<typeof requireRecentSignIn>[0], deps: UserApiDeps): void {
  requireRecentSignIn(c, deps.signInMaxAgeMs, deps.clock.now());
}

function listHandler(deps: UserApiDeps): OperationHandler<typeof listKeys> {
  return async (c) => {
    const now = deps.clock.now();
    const accountId = c.get('user').userId;
    const [keys, totals] = await Promise.all([
      deps.store.listKeys(accountId),
      deps.usage.keyTotals(accountId, now),
    ]);
    return c.json(
      {
        keys: keys.map((key) => {
          const usage = totals.get(key.keyId);
          return { ...view(key, now), count: usage?.count ?? 0, lastUsedAt: usage?.lastUsedAt ?? null };
        }),
      },
      200,
    );
  };
}

function createHandler(deps: UserApiDeps): OperationHandler<typeof createKey> {
  return async (c) => {
    recentSignIn(c, deps);
    const { name } = c.req.valid('json');
    const accountId = c.get('user').userId;
    const terms = await deps.plans.accountPlan(accountId);
    // A token for a user whose sign-up trigger never ran: no account yet (GET /me makes it).
    if (!terms) throw notFound('account');
    const maxKeys = terms.plan?.maxKeys;
    const created = await deps.store.createKey({
      accountId,
      name: name ?? DEFAULT_KEY_NAME,
      now: deps.clock.now(),
      ...(maxKeys === undefined ? {} : { maxKeys }),
    });
    if (!created.ok) {
      if (created.reason === 'key_limit') throw keyLimitReached(created.limit, created.live);
      throw notFound('account');
    }
    return c.json(issued(created.value.record, created.value.secret.key), 201);
  };
}

function revealHandler(deps: UserApiDeps): OperationHandler<typeof revealKey> {
  return async (c) => {
    recentSignIn(c, deps);
    const revealed = unwrap(
      await deps.store.revealKey({
        accountId: c.get('user').userId,
        keyId: c.req.valid('param').id,
        now: deps.clock.now(),
      }),
      'reveal',
    );
    return c.json(issued(revealed.record, revealed.secret.key), 201);
  };
}

function rollHandler(deps: UserApiDeps): OperationHandler<typeof rollKey> {
  return async (c) => {
    recentSignIn(c, deps);
    const { gracePeriodSeconds } = c.req.valid('json');
    const accountId = c.get('user').userId;
    const maxKeys = (await deps.plans.accountPlan(accountId))?.plan?.maxKeys;
    const rolled = unwrap(
      await deps.store.rollKey({
        accountId,
        keyId: c.req.valid('param').id,
        graceMs: gracePeriodSeconds === undefined ? deps.rollGraceMs : gracePeriodSeconds * 1000,
        now: deps.clock.now(),
        ...(maxKeys === undefined ? {} : { maxKeys }),
      }),
      'roll',
    );
    const { previous } = rolled;
    // KeyStore sets the expiry of every key it rolls; KeyRecord has it optional for the others.
    if (previous.expiresAt === undefined) throw new Error(`rolled key ${previous.keyId} has no expiry`);
    return c.json(
      {
        ...issued(rolled.record, rolled.secret.key),
        previous: { id: previous.keyId, status: 'expiring' as const, expiresAt: previous.expiresAt },
      },
      201,
    );
  };
}

function revokeHandler(deps: UserApiDeps): OperationHandler<typeof revokeKey> {
  return async (c) => {
    const now = deps.clock.now();
    const revoked = unwrap(
      await deps.store.revokeKey({
        accountId: c.get('user').userId,
        keyId: c.req.valid('param').id,
        now,
      }),
      'revoke',
    );
    return c.json(view(revoked, now), 200);
  };
}
