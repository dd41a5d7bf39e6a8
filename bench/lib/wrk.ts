import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WrkResult } from './types';

/** The wrk script of the sustained phase: random keys, 200s counted per key id (see its header). */
export const WRK_SCRIPT = fileURLToPath(new URL('../wrk/keys.lua', import.meta.url));

/** Debian's wrk (`apt-get install wrk`; .ci/run installs it), or BENCH_WRK. */
export const wrkBinary = (): string => process.env.BENCH_WRK ?? 'wrk';

export interface WrkOptions {
  readonly url: string;
  readonly keys: readonly string[];
  readonly bogusKeys: readonly string[];
  readonly bogusShare: number;
  readonly connections: number;
  readonly threads: number;
  readonly durationSec: number;
  readonly timeoutSec: number;
  /** Called the moment wrk has started (its process spawned). */
  readonly onStart?: () => void;
}

/**
 * Runs wrk with bench/wrk/keys.lua against one key API and returns what the script printed in its
 * done(), plus when the process ended (the end of the load: wrk closes its connections as it stops).
 */
export async function runWrk(options: WrkOptions): Promise<{ result: WrkResult; endedAt: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-bench-wrk-'));
  try {
    const keysFile = join(dir, 'keys.txt');
    await writeFile(
      keysFile,
      `${[...options.keys.map((k) => `good ${k}`), ...options.bogusKeys.map((k) => `bogus ${k}`)].join('\n')}\n`,
    );
    const args = [
      `-t${options.threads}`,
      `-c${options.connections}`,
      `-d${options.durationSec}s`,
      '--timeout',
      `${options.timeoutSec}s`,
      '-s',
      WRK_SCRIPT,
      options.url.endsWith('/') ? options.url : `${options.url}/`,
      '--',
      keysFile,
      String(options.bogusShare),
    ];
    const { stdout, stderr, code, endedAt } = await new Promise<{
      stdout: string;
      stderr: string;
      code: number | null;
      endedAt: number;
    }>((resolve, reject) => {
      const child = spawn(wrkBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        err += chunk;
      });
      child.once('spawn', () => options.onStart?.());
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'ENOENT'
            ? new Error(
                `${wrkBinary()} not found: install Debian's wrk (apt-get install wrk) or set BENCH_WRK`,
              )
            : error,
        ),
      );
      child.once('close', (exitCode) =>
        resolve({ stdout: out, stderr: err, code: exitCode, endedAt: Date.now() }),
      );
    });
    const line = stdout.split('\n').find((l) => l.startsWith('WRK_RESULT '));
    if (code !== 0 || !line) {
      throw new Error(`wrk failed (exit ${code}): ${stderr.trim() || stdout.trim()}`);
    }
    return { result: JSON.parse(line.slice('WRK_RESULT '.length)) as WrkResult, endedAt };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
