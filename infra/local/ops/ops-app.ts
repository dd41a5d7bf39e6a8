import { Hono } from 'hono';
import type { OperationsDefinition } from '../../../contracts/dashboard';
import { type ErrorCode, errorBody } from '../../../contracts/errors';
import { ADMIN_GROUP } from '../../../contracts/plans';
import type { TokenVerifier } from '../../../services/user-api/token-verifier';
import type { MetricStore } from './metric-store';
import { opsPageHtml } from './page';
import { opsSnapshot } from './snapshot';

export interface OpsAppOptions {
  readonly definition: OperationsDefinition;
  readonly store: MetricStore;
  /** The user API's verifier of Cognito ID tokens, over the same pool. */
  readonly verifier: TokenVerifier;
  /** Where the page signs in (cognito-local) and as which app client. */
  readonly cognito: { readonly endpoint: string; readonly clientId: string };
}

/** The JSON the page polls; the page itself holds no figures. */
export const SNAPSHOT_PATH = '/api/snapshot';

class OpsError extends Error {
  constructor(
    readonly status: 401 | 403 | 404,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Admins only, as the user API's /admin routes: a Cognito ID token verified against the pool (no
 * or a bad token 401), of a member of ADMIN_GROUP (anyone else 403), in the one error shape.
 */
async function requireAdmin(verifier: TokenVerifier, authorization: string | undefined): Promise<void> {
  const token = BEARER.exec(authorization ?? '')?.[1];
  if (!token) {
    throw new OpsError(
      401,
      'unauthorized',
      'Sign in first: send your ID token as "Authorization: Bearer <token>"',
    );
  }
  const user = await verifier.verify(token).catch(() => {
    throw new OpsError(401, 'unauthorized', 'The token is invalid or has expired; sign in again');
  });
  if (!user.groups?.includes(ADMIN_GROUP)) {
    throw new OpsError(
      403,
      'forbidden',
      `Only the owner's admins (Cognito group "${ADMIN_GROUP}") may see the ops view`,
    );
  }
}

/** The local ops view: the page (GET /) and its figures (GET /api/snapshot, admins only). */
export function createOpsApp(options: OpsAppOptions): Hono {
  const app = new Hono();
  const page = opsPageHtml({
    cognito: options.cognito,
    snapshotPath: SNAPSHOT_PATH,
    dashboard: options.definition.name,
  });
  app.get('/', (c) => {
    c.header('cache-control', 'no-store');
    return c.html(page);
  });
  app.get(SNAPSHOT_PATH, async (c) => {
    await requireAdmin(options.verifier, c.req.header('authorization'));
    c.header('cache-control', 'no-store');
    return c.json(opsSnapshot(options.definition, options.store));
  });
  app.notFound((c) => c.json(errorBody('not_found', `No ${c.req.method} ${c.req.path} here`), 404));
  app.onError((error, c) => {
    if (error instanceof OpsError) return c.json(errorBody(error.code, error.message), error.status);
    process.stderr.write(`[ops] ${c.req.method} ${c.req.path} failed: ${error.stack ?? error}\n`);
    return c.json(errorBody('internal_error', 'The ops view failed; see the stack output'), 500);
  });
  return app;
}
