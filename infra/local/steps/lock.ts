import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStackError } from '../errors';
import type { Stoppable } from './step';

const LOCK_FILE = 'stack.lock';

/**
 * One stack per data dir: two would share DynamoDB's and Kinesis's files. The lock holds the
 * owner's pid; a lock whose owner is gone (killed, crashed) is taken over, after `cleanUpAfter`
 * has stopped what that owner may have left behind (its DynamoDB Local).
 */
export async function acquireLock(
  dataDir: string,
  notice: (line: string) => void,
  cleanUpAfter: () => Promise<void>,
): Promise<Stoppable> {
  const lockPath = join(dataDir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
    }
    const owner = readPid(lockPath);
    if (owner !== undefined && isAlive(owner)) {
      throw new LocalStackError(`another Tollgate stack is running (pid ${owner}, lock ${lockPath})`);
    }
    await cleanUpAfter();
    rmSync(lockPath, { force: true });
    notice(`removed stale lock from pid ${owner ?? 'unknown'}`);
  }

  // If this process ends without stop() (uncaught error, process.exit), don't leave a lock
  // behind that the next start has to explain.
  const releaseOnExit = () => releaseLockFile(lockPath);
  process.on('exit', releaseOnExit);
  return {
    stop: () => {
      process.off('exit', releaseOnExit);
      releaseLockFile(lockPath);
    },
  };
}

function releaseLockFile(lockPath: string): void {
  if (readPid(lockPath) === process.pid) rmSync(lockPath, { force: true });
}

/** The pid a file holds, if it holds one. */
export function readPid(path: string): number | undefined {
  const pid = Number.parseInt(readText(path) ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
