import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: where package-lock.json, services/ and web/ live. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Where the web page's build lands (`npm run web:build`); deployed only if it exists at synth time. */
export const WEB_DIST = join(REPO_ROOT, 'web', 'dist');
