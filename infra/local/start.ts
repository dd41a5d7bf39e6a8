import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV } from '../../contracts/config';
import { TRANSPORTS, type Transport } from '../../contracts/transport';
import { ensureWebBuilt } from '../../web/server/build';
import { ADMIN_FILE } from './bootstrap';
import { LocalStackError } from './errors';
import { resolvePorts } from './ports';
import { type LocalStack, startLocalStack } from './stack';

/**
 * `npm start`: the whole of Tollgate on this machine until Ctrl-C.
 * TOLLGATE_DATA_DIR chooses the data dir (default `.local` in the repo), TOLLGATE_PORT_* the ports.
 */

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

async function main(): Promise<void> {
  // The v3 SDK warns on every start that it will drop Node 20 in 2027; the engines field covers it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const dataDir = resolve(repoRoot, process.env.TOLLGATE_DATA_DIR ?? '.local');
  const ports = resolvePorts(process.env);
  const transport = process.env[ENV.transport];
  if (transport !== undefined && !TRANSPORTS.includes(transport as Transport)) {
    throw new LocalStackError(`${ENV.transport} must be one of ${TRANSPORTS.join(', ')}, not "${transport}"`);
  }
  const logLevel = process.env.POWERTOOLS_LOG_LEVEL?.toUpperCase();
  const allowedOrigins = process.env[ENV.allowedOrigins]
    ?.split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');

  let stack: LocalStack | undefined;
  let stoppingSince: number | undefined;
  const shutDown = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      // tsx and npm pass a terminal's Ctrl-C on to this process although it already got it from
      // the terminal: a repeat right away is that echo. A later one means "stop waiting"; the exit
      // hooks still stop DynamoDB Local and release the lock.
      if (Date.now() - stoppingSince > 2_000) process.exit(130);
      return;
    }
    stoppingSince = Date.now();
    process.stdout.write(`\n${signal}: stopping the local stack...\n`);
    // During start-up there is no stack to stop yet: exiting runs the stack's exit hooks, which
    // stop DynamoDB Local and release the lock.
    (stack ? stack.stop() : Promise.resolve()).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`stopping failed: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, shutDown);

  // The page is built before the stack starts (only when web/dist is missing or older than its
  // sources). A failed build does not stop the APIs: the page then says it is not built.
  try {
    await ensureWebBuilt({ log: (line) => process.stdout.write(`${line}\n`) });
  } catch (error) {
    process.stderr.write(
      `${(error as Error).message}\nThe web page is not up to date; the APIs start anyway.\n`,
    );
  }

  process.stdout.write(`Starting the Tollgate local stack (data in ${dataDir})...\n`);
  stack = await startLocalStack({
    dataDir,
    ports,
    settings: tunedSettings(process.env),
    ...(transport ? { transport: transport as Transport } : {}),
    ...(logLevel === 'DEBUG' || logLevel === 'INFO' || logLevel === 'WARN' || logLevel === 'ERROR'
      ? { logLevel }
      : {}),
    ...(allowedOrigins?.length ? { allowedOrigins } : {}),
  });
  process.stdout.write(`${describe(stack, dataDir)}\n`);
}

/**
 * The handler settings of contracts/config.ts that a developer may tune for `npm start` (docs/local.md
 * names them), taken from this shell; the stack sets resource names and endpoints itself.
 */
const TUNABLE = [
  ENV.keyPrefix,
  ENV.publishFailureMode,
  ENV.keyCacheFreshMs,
  ENV.keyCacheStaleMs,
  ENV.keyCacheNegativeMs,
  ENV.keyCacheMaxEntries,
  ENV.metricsFlushMs,
  ENV.lateWindowMs,
  ENV.futureWindowMs,
  ENV.rollGraceMs,
  ENV.sqsDedupe,
  ENV.ledgerFlush,
  ENV.refusalsFlushMs,
] as const;

function tunedSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    TUNABLE.flatMap((name) => (env[name] === undefined ? [] : [[name, env[name] as string]])),
  );
}

function describe(stack: LocalStack, dataDir: string): string {
  const { endpoints: e, env } = stack;
  const rows: Array<[string, string]> = [
    ['web page', e.web],
    ['key-api (ALB)', e.keyApi],
    ['user-api', e.userApi],
    ['example API (gated)', `${e.exampleApi}  (its document: ${e.exampleApi}/openapi.json)`],
    ['Cognito', e.cognito.endpoint],
    ['  user pool', e.cognito.userPoolId],
    ['  app client', e.cognito.clientId],
    ['DynamoDB', e.dynamodb],
    ['SQS', e.sqs],
    ['Kinesis', e.kinesis],
    ['Lambda invoke', e.lambda],
    ['usage queue', env[ENV.usageQueueUrl] ?? ''],
    ['usage stream', env[ENV.usageStreamName] ?? ''],
    ['transport', `key-api publishes to ${env[ENV.transport]}`],
    ['metering', 'consuming the usage queue and stream'],
    [
      'Stripe stand-in',
      `${e.stripe}  (test infrastructure; key and meter in ${resolve(dataDir, 'billing.json')})`,
    ],
    ['billing webhook', e.billingWebhook],
    ['ops page (admins)', e.ops],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  return [
    '',
    'Tollgate is running:',
    ...rows.map(([name, value]) => `  ${name.padEnd(width)}  ${value}`),
    '',
    `Open ${e.web} to sign up and manage your keys.`,
    `Billing: the user API's POST /billing/checkout {"planId":"pro"} opens a Checkout page on the Stripe stand-in (pay with 4242424242424242).`,
    `Admin (the /admin routes of the user API): sign in as ${stack.admin.email} with password ${stack.admin.password}`,
    `  (kept in ${resolve(dataDir, ADMIN_FILE)}, the same on every start); the same sign-in opens the ops page ${e.ops}`,
    `Endpoints: ${resolve(dataDir, 'endpoints.json')}`,
    `Verification codes are printed here and kept in ${resolve(dataDir, 'mail/outbox.jsonl')}.`,
    'Press Ctrl-C to stop.',
  ].join('\n');
}

main().catch((error: unknown) => {
  if (error instanceof LocalStackError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`The local stack failed to start: ${(error as Error)?.stack ?? error}\n`);
  }
  process.exit(1);
});
