import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { secureHeaders } from 'hono/secure-headers';
import { errorBody } from '../../contracts/errors';
import { requireAdmin, requireUser } from './auth';
import type { UserApiDeps } from './env';
import { onError } from './errors';
import { API_VERSION, ID_TOKEN_SCHEME, router } from './openapi';
import { adminRoutes } from './routes/admin';
import { adminUsageRoutes } from './routes/admin-usage';
import { billingRoutes } from './routes/billing';
import { keyRoutes } from './routes/keys';
import { meRoutes } from './routes/me';
import { planRoutes } from './routes/plan';
import { usageRoutes } from './routes/usage';

const MAX_BODY_BYTES = 16 * 1024;
const OPENAPI_PATH = '/openapi.json';

/**
 * The user API: account owners manage their keys; the SaaS owner's admins manage plans and accounts. Built from its dependencies so Lambda (`handle`),
 * the local server (`serve`) and tests (`app.request`) run the very same app. Its OpenAPI document,
 * generated from the schemas that validate the requests, is served at `GET /openapi.json`.
 */
export function createApp(deps: UserApiDeps) {
  const app = router();
  // First, so it sees every answer last: routes, errors (onError), 404s, 413s and CORS preflights.
  // Answers carry key secrets (create, reveal, roll) or what only their account may read (keys,
  // usage, plans, accounts): no browser or shared cache may keep any of them (`no-store`). The one
  // exception is the OpenAPI document, the same for everyone and free of any account's data: a
  // cache may keep it, but asks every time (`no-cache`) so a deploy's new routes show at once.
  app.use(async (c, next) => {
    await next();
    c.header('cache-control', c.req.path === OPENAPI_PATH && c.res.ok ? 'no-cache' : 'no-store');
  });
  app.use(
    secureHeaders({ crossOriginResourcePolicy: 'cross-origin' }),
    cors({
      origin: (origin) => (deps.allowedOrigins.includes(origin) ? origin : null),
      allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      allowHeaders: ['authorization', 'content-type'],
      // The admin's CSV report pages by this header (routes/admin-reports.ts): the page must read it.
      exposeHeaders: ['x-next-cursor'],
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
  app.use('/billing/*', requireUser(deps.verifier));
  // Everything under /admin, unknown routes included, is for the owner's admins only.
  app.use('/admin/*', requireAdmin(deps.verifier));
  app.use('/admin', requireAdmin(deps.verifier));
  app.notFound((c) => c.json(errorBody('not_found', 'No such route'), 404));
  app.onError((error, c) => onError(error, c, deps.logger, deps.metrics));
  app.openAPIRegistry.registerComponent('securitySchemes', ID_TOKEN_SCHEME, {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: "A Cognito ID token of the user pool's web client (`Authorization: Bearer <id token>`)",
  });

  // Built on the first request, once every router is mounted, and kept: the routes never change.
  // Not `app.doc31`, which would answer a generation failure with the error itself, internals and all.
  let document: ReturnType<typeof app.getOpenAPI31Document> | undefined;
  app.get(OPENAPI_PATH, (c) => {
    document ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'Tollgate user API',
        version: API_VERSION,
        description:
          "Account owners manage their API keys and read their usage; the owner's admins (Cognito group `admins`) manage plans and accounts under `/admin`.",
      },
    });
    return c.json(document);
  });

  return app
    .route('/me', meRoutes(deps))
    .route('/me/plan', planRoutes(deps))
    .route('/keys', keyRoutes(deps))
    .route('/usage', usageRoutes(deps))
    .route('/', billingRoutes(deps))
    .route('/admin', adminRoutes(deps))
    .route('/admin', adminUsageRoutes(deps));
}

/** The API's type, for the web page's typed client (`hc<AppType>`). */
export type AppType = ReturnType<typeof createApp>;
