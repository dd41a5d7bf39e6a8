import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WEB_DIST_DIR } from './local-site';

const WEB_DIR = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const REPO_ROOT = resolve(WEB_DIR, '..');

/** What the built page is made from: a change to any of these makes web/dist stale. */
const BUILD_INPUTS = [
  join(WEB_DIR, 'src'),
  join(WEB_DIR, 'public'),
  join(WEB_DIR, 'index.html'),
  join(WEB_DIR, 'vite.config.ts'),
  join(WEB_DIR, 'tsconfig.json'),
  // The page bundles the contracts it shares with the services (web config, errors, plans).
  join(REPO_ROOT, 'contracts'),
  // The typed API client follows the user-api's routes; new dependency versions change the bundle.
  join(REPO_ROOT, 'services', 'user-api'),
  join(REPO_ROOT, 'package-lock.json'),
];

export type WebBuildState = 'missing' | 'stale' | 'fresh';

function newestMtime(path: string): number {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch {
    return 0;
  }
  if (!stats.isDirectory()) return stats.mtimeMs;
  let newest = stats.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** Whether web/dist exists and is newer than everything it is built from. */
export function webBuildState(distDir = WEB_DIST_DIR): WebBuildState {
  const built = newestMtime(join(distDir, 'index.html'));
  if (built === 0) return 'missing';
  return BUILD_INPUTS.some((input) => newestMtime(input) > built) ? 'stale' : 'fresh';
}

/**
 * Runs `npm run web:build` (type-check, then Vite) unless web/dist is fresh. Resolves with what it
 * found; rejects with the build's output when the build fails.
 */
export async function ensureWebBuilt(
  options: { log?: (line: string) => void; force?: boolean } = {},
): Promise<WebBuildState> {
  const state = webBuildState();
  if (state === 'fresh' && !options.force) return state;
  options.log?.(
    state === 'missing'
      ? 'Building the web page (web/dist is missing)...'
      : 'Rebuilding the web page (web/dist is older than its sources)...',
  );
  const output: string[] = [];
  const code = await new Promise<number | null>((resolveExit, reject) => {
    const child = spawn('npm', ['run', '--silent', 'web:build'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    const keep = (chunk: Buffer) => output.push(chunk.toString('utf8'));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('exit', resolveExit);
  });
  if (code !== 0) {
    throw new Error(`npm run web:build failed (exit ${code}):\n${output.join('').trim()}`);
  }
  return state;
}
