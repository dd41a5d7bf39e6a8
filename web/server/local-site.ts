import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { type WebConfig, webContentSecurityPolicy } from '../../contracts/web-config';

/** Where `npm run web:build` puts the page. */
export const WEB_DIST_DIR = resolve(fileURLToPath(new URL('.', import.meta.url)), '../dist');

/** Port of the Vite dev server (`npm run web:dev`); the local stack lets this origin call its APIs. */
export const WEB_DEV_PORT = 5174;

export interface LocalSiteOptions {
  /** The built page; `WEB_DIST_DIR` unless given. */
  readonly root?: string;
  /** Answered at `/config.json`. */
  readonly config: WebConfig;
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tollgate: page not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>The Tollgate page is not built yet</h1>
<p>Run <code>npm run web:build</code> (or restart <code>npm start</code>, which builds it) and reload.
The APIs of the local stack are running meanwhile.</p>
</body></html>`;

/**
 * The local stand-in for S3 + CloudFront: serves the built page and a `/config.json` generated from
 * the running stack. A page that is not built yet (or is rebuilt while the stack runs) is picked up
 * on the next request, no restart needed.
 */
export function createLocalSiteApp(options: LocalSiteOptions): Hono {
  const root = options.root ?? WEB_DIST_DIR;
  const { cognito, userApi, keyApi } = options.config;
  const apiOrigins = [cognito.endpoint, userApi, keyApi]
    .filter((url): url is string => url !== undefined)
    .map((url) => new URL(url).origin);

  // serveStatic complains on creation when its root is missing, so it is made once the page exists.
  let statics: MiddlewareHandler | undefined;
  const app = new Hono();
  app.use(
    secureHeaders({
      // Served over plain HTTP on loopback: HSTS would mean nothing here.
      strictTransportSecurity: false,
    }),
  );
  // The same policy CloudFront sends on AWS (contracts/web-config.ts), with this stack's origins.
  const contentSecurityPolicy = webContentSecurityPolicy(apiOrigins);
  app.use(async (c, next) => {
    await next();
    c.header('content-security-policy', contentSecurityPolicy);
  });
  app.get('/config.json', (c) => {
    c.header('cache-control', 'no-store');
    return c.json(options.config);
  });
  app.use('*', async (c, next) => {
    if (!existsSync(join(root, 'index.html'))) {
      c.header('cache-control', 'no-store');
      return c.html(NOT_BUILT_PAGE, 503);
    }
    statics ??= serveStatic({
      root,
      onFound: (path, found) => {
        // Vite names everything under assets/ by content hash; the rest must be revalidated.
        const hashed = path.startsWith(join(root, 'assets'));
        found.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
    return statics(c, next);
  });
  app.notFound((c) => c.text('Not found', 404));
  return app;
}
