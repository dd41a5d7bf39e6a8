import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { secureHeaders } from 'hono/secure-headers';
import { errorBody } from '../shared/errors';
import { requireUser } from './auth';
import type { UserApiDeps, UserApiEnv } from './env';
import { onError } from './errors';
import { keyRoutes } from './routes/keys';
import { meRoutes } from './routes/me';
import { usageRoutes } from './routes/usage';

const MAX_BODY_BYTES = 16 * 1024;

/**
 * The user API: account owners manage their keys. Built from its dependencies so Lambda (`handle`),
 * the local server (`serve`) and tests (`app.request`) run the very same app.
 */
export function createApp(deps: UserApiDeps) {
  const app = new Hono<UserApiEnv>();
  app.use(
    secureHeaders({ crossOriginResourcePolicy: 'cross-origin' }),
    cors({
      origin: (origin) => (deps.allowedOrigins.includes(origin) ? origin : null),
      allowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      allowHeaders: ['authorization', 'content-type'],
      maxAge: 600,
    }),
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        c.json(errorBody('payload_too_large', `Request bodies are limited to ${MAX_BODY_BYTES} bytes`), 413),
    }),
  );
  app.use('/me/*', requireUser(deps.verifier));
  app.use('/me', requireUser(deps.verifier));
  app.use('/keys/*', requireUser(deps.verifier));
  app.use('/keys', requireUser(deps.verifier));
  app.use('/usage', requireUser(deps.verifier));
  app.notFound((c) => c.json(errorBody('not_found', 'No such route'), 404));
  app.onError((error, c) => onError(error, c, deps.logger, deps.metrics));
  return app.route('/me', meRoutes(deps)).route('/keys', keyRoutes(deps)).route('/usage', usageRoutes(deps));
}

/** The API's type, for the web page's typed client (`hc<AppType>`). */
export type AppType = ReturnType<typeof createApp>;
