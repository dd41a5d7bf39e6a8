import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: where package-lock.json, services/ and web/ live. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Where the web page's build lands (`npm run web:build`); deployed only if it exists at synth time. */
export const WEB_DIST = join(REPO_ROOT, 'web', 'dist');

/**
 * The owner API's handler when the `ownerApiEntry` context names none: the example API behind the
 * gate. A path from the repository root (the bundle is built from there, so it must lie inside it).
 */
export const EXAMPLE_API_ENTRY = 'examples/rates-api/handler.ts';

/**
 * The ALB path patterns sent to the owner API when the `ownerApiPaths` context names none: the
 * example API's routes. Everything else goes to key-api.
 */
export const EXAMPLE_API_PATHS: readonly string[] = ['/v1/*', '/openapi.json'];
