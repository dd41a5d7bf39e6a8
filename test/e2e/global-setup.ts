import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { findFreePorts, PORT_ENV, PORT_NAMES } from '../../infra/local/ports';
import { readEndpoints } from '../../infra/local/stack';
import { ensureWebBuilt } from '../../web/server/build';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const START_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 20_000;

/**
 * The browser tests get Tollgate the way a person does: the page is built if it is missing or
 * stale, then `npm start`'s entry point runs in a child process, in a fresh data dir on free ports:
 * the same command, environment handling and shutdown a person gets.
 */
// What is provided (endpoints, dataDir) is declared in test/setup/global-setup.ts, as for integ.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  await ensureWebBuilt({ log: (line) => process.stderr.write(`[e2e] ${line}\n`) });

  const dataDir = await mkdtemp(join(tmpdir(), 'tollgate-e2e-'));
  const ports = await findFreePorts();
  const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_DATA_DIR: dataDir, POWERTOOLS_LOG_LEVEL: 'WARN' };
  delete env.TOLLGATE_ALLOWED_ORIGINS;
  for (const name of PORT_NAMES) env[PORT_ENV[name]] = String(ports[name]);

  const output: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', 'infra/local/start.ts'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString('utf8'));
    output.splice(0, Math.max(0, output.length - 200));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));

  const cleanUp = async () => {
    await stop(child, exited);
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const started = Date.now();
    let endpoints = readEndpoints(dataDir);
    while (!endpoints) {
      if (child.exitCode !== null) throw new Error(`the local stack exited (${child.exitCode})`);
      if (Date.now() - started > START_TIMEOUT_MS) throw new Error('the local stack did not start in time');
      await new Promise((wait) => setTimeout(wait, 250));
      endpoints = readEndpoints(dataDir);
    }
    project.provide('endpoints', endpoints);
    project.provide('dataDir', dataDir);
    return cleanUp;
  } catch (error) {
    await cleanUp();
    throw new Error(`${(error as Error).message}; its output:\n${output.join('').slice(-4000)}`);
  }
}

async function stop(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // start.ts stops the stack (DynamoDB Local included) on SIGTERM.
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
