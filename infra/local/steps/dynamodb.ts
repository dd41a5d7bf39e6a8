import { type ChildProcess, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { dynamoDbClient } from '../../../services/platform/aws-clients';
import { spawnDynamoDbLocal } from '../dynamodb-local';
import { LocalStackError } from '../errors';
import { localAws, localUrl, withClient } from '../local-aws';
import { poll } from '../poll';
import { isAlive, readPid, readText } from './lock';
import type { Engine, StackContext } from './step';

/** Where the pid of DynamoDB Local is kept, to stop it if its stack died without cleaning up. */
const DYNAMODB_PID_FILE = 'dynamodb.pid';
const DYNAMODB_START_TIMEOUT_MS = 60_000;

/** DynamoDB Local runs on the JVM: fails with what to install when there is no Java 17+. */
export function checkJava(): void {
  const result = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const install = 'install a JDK (e.g. apt-get install openjdk-17-jre-headless)';
  if (result.error || result.status !== 0) {
    throw new LocalStackError(`Java 17+ is required for DynamoDB Local: ${install}`);
  }
  // `java -version` writes e.g. `openjdk version "17.0.15"` or, before Java 9, `"1.8.0_402"`.
  const version = /version "(\d+)(?:\.(\d+))?/.exec(`${result.stderr}${result.stdout}`);
  if (version?.[1]) {
    const major = version[1] === '1' ? Number(version[2]) : Number(version[1]);
    if (major < 17) {
      throw new LocalStackError(`Java 17+ is required for DynamoDB Local, found Java ${major}: ${install}`);
    }
  }
}

/**
 * DynamoDB Local on the stack's port with its tables in `<dataDir>/dynamodb`. It is started at
 * once; `ready` waits for it to answer (and fails as soon as it dies).
 */
export async function startDynamoDb(context: StackContext): Promise<Engine> {
  const { dataDir } = context;
  const port = context.ports.dynamodb;
  const dbPath = join(dataDir, 'dynamodb');
  await mkdir(dbPath, { recursive: true });
  const child = spawnOnLoopback(port, dbPath);
  const pidPath = join(dataDir, DYNAMODB_PID_FILE);
  const watch = watchExit(child, keepOutputTail(child), () => rmSync(pidPath, { force: true }));
  const stop = stopper(child, watch);
  try {
    if (child.pid) writeFileSync(pidPath, `${child.pid}\n`);
  } catch (error) {
    await stop();
    throw error;
  }
  const endpoint = localUrl(port);
  const ready = answering(endpoint, watch);
  return { endpoint, ready: () => ready, stop };
}

function spawnOnLoopback(port: number, dbPath: string): ChildProcess {
  // Detached into its own process group: a Ctrl-C in the terminal reaches only this process,
  // which stops the pollers and servers that still need DynamoDB before stopping DynamoDB itself.
  // (An exit hook, and the stale-lock check of the next start, keep it from being orphaned.)
  // On 127.0.0.1 only (dynamodb-local.ts): the jar by itself listens on every interface.
  const started = spawnDynamoDbLocal({ port, path: dbPath, sharedDb: true, detached: true });
  if (started.exposed) {
    process.stderr.write(
      `warning: DynamoDB Local listens on every interface (port ${port}): this Java has no compiler to run its loopback launcher; install a JDK 17+ or firewall the port\n`,
    );
  }
  return started.child;
}

/**
 * Its banner and errors: read continuously (a full pipe would block the JVM), keeping the tail
 * for the message when it dies. Returns the last line read.
 */
function keepOutputTail(child: ChildProcess): () => string | undefined {
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((line) => line.trim() !== ''),
    );
    output.splice(0, Math.max(0, output.length - 20));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output.at(-1);
}

interface ExitWatch {
  /** Resolves once the process has ended (or could not be started). */
  readonly ended: Promise<void>;
  /** How it ended, for messages; undefined while it runs. */
  ending(): string | undefined;
  /** From now on its end is not reported as a failure. */
  expectEnd(): void;
}

function watchExit(child: ChildProcess, lastLine: () => string | undefined, onEnd: () => void): ExitWatch {
  let exited: { code: number | null; signal: NodeJS.Signals | null; error?: Error } | undefined;
  let expected = false;
  const ending = () => {
    if (!exited) return undefined;
    return exited.error
      ? `could not be started: ${exited.error.message}`
      : `exited (${exited.signal ?? `code ${exited.code}`}): ${lastLine() ?? 'no output'}`;
  };
  const ended = new Promise<void>((resolveEnded) => {
    const end = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (exited) return;
      exited = { code, signal, ...(error ? { error } : {}) };
      onEnd();
      if (!expected) process.stderr.write(`DynamoDB Local ${ending()}\n`);
      resolveEnded();
    };
    child.once('exit', (code, signal) => end(code, signal));
    // A failed spawn emits 'error' and no 'exit'.
    child.once('error', (error) => end(null, null, error));
  });
  return {
    ended,
    ending,
    expectEnd: () => {
      expected = true;
    },
  };
}

/** The JVM must not outlive this process, whichever way it ends: stopped by stop() or on exit. */
function stopper(child: ChildProcess, watch: ExitWatch): () => Promise<void> {
  const killOnExit = () => child.kill('SIGTERM');
  process.on('exit', killOnExit);
  return async () => {
    process.off('exit', killOnExit);
    watch.expectEnd();
    if (watch.ending() !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await watch.ended;
    clearTimeout(timer);
  };
}

function answering(endpoint: string, watch: ExitWatch): Promise<void> {
  const ready = poll(
    'DynamoDB Local to answer',
    async () => {
      const ending = watch.ending();
      if (ending !== undefined) throw new LocalStackError(`DynamoDB Local ${ending} during start-up`);
      await withClient(dynamoDbClient(localAws({ dynamodb: endpoint })), (client) =>
        client.send(new ListTablesCommand({ Limit: 1 })),
      );
      return true;
    },
    { timeoutMs: DYNAMODB_START_TIMEOUT_MS },
  ).then(() => undefined);
  // Awaited only after the other engines start; if one of them fails first, the stack stops and
  // this rejects with nobody listening yet, which must not become an unhandled rejection.
  ready.catch(() => {});
  return ready;
}

/**
 * The DynamoDB Local a stack that died without stopping left running on this data dir, if any:
 * stopped before its lock is taken over.
 */
export async function stopOrphanedDynamoDb(dataDir: string, notice: (line: string) => void): Promise<void> {
  const pidPath = join(dataDir, DYNAMODB_PID_FILE);
  const pid = readPid(pidPath);
  rmSync(pidPath, { force: true });
  if (pid === undefined || !isAlive(pid)) return;
  // Only a process that is recognisably our DynamoDB Local on this data dir (the pid may have
  // been reused by something else since). Without /proc there is no telling, so leave it.
  const commandLine = readText(`/proc/${pid}/cmdline`)?.split('\0').join(' ') ?? '';
  if (!commandLine.includes('DynamoDBLocal.jar') || !commandLine.includes(join(dataDir, 'dynamodb'))) return;
  process.kill(pid, 'SIGTERM');
  try {
    await poll('orphaned DynamoDB Local to exit', async () => (isAlive(pid) ? undefined : true), {
      timeoutMs: 5_000,
    });
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  notice(`stopped DynamoDB Local (pid ${pid}) left behind by a previous stack`);
}
