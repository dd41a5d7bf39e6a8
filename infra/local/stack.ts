import { type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { ListQueuesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { serve } from '@hono/node-server';
import { createRequestHandler as createSqsRequestHandler } from 'local-aws-sqs';
import { DEFAULT_ACCEPTANCE_WINDOW, ENV } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { usageRedelivery } from '../../contracts/redelivery';
import { usageQueue, usageStream, userPool } from '../../contracts/resources';
import { DEFAULT_TRANSPORT, type Transport } from '../../contracts/transport';
import { composeRatesApi } from '../../examples/rates-api/compose';
import { composeAuthTriggers } from '../../services/auth-triggers/compose';
import { loadAuthTriggersConfig } from '../../services/auth-triggers/config';
import { loadGateConfig } from '../../services/gate/config';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { composeMetering } from '../../services/metering/compose';
import { loadMeteringConfig } from '../../services/metering/config';
import type { AwsOptions } from '../../services/shared/aws-clients';
import { discardMetrics } from '../../services/shared/metrics';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import { createLocalSiteApp, WEB_DEV_PORT } from '../../web/server/local-site';
import { startAlbAdapter } from './alb-adapter';
import {
  AUTH_TRIGGERS_FUNCTION,
  type BootstrapResult,
  bootstrap,
  dynamoDbClient,
  kinesisClient,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type LocalAdmin,
  poll,
  sqsClient,
} from './bootstrap';
import { startCognitoLocal } from './cognito';
import { spawnDynamoDbLocal } from './dynamodb-local';
import { LocalStackError } from './errors';
import { closeServer, listen } from './http-util';
import { createKinesisServer } from './kinesis';
import { type InvokeHandler, startLambdaInvokeServer } from './lambda-invoke';
import { localAlertSender } from './mailbox';
import { KinesisPoller } from './pollers/kinesis-poller';
import { LOCAL_SQS_BATCHES_IN_FLIGHT, SqsPoller } from './pollers/sqs-poller';
import { type LocalPorts, PORT_ENV, PORT_LABELS, PORT_NAMES, portProblem } from './ports';

export { LocalStackError } from './errors';
export type { LocalPorts } from './ports';

export interface LocalStackOptions {
  /** Where everything persistent lives (tables, streams, users, captured mail, the lock). */
  readonly dataDir: string;
  readonly ports: LocalPorts;
  /** Part of every resource name; `local` unless given. */
  readonly stage?: string;
  /** Only warnings and errors: for tests. */
  readonly quiet?: boolean;
  /**
   * Browser origins the APIs answer CORS requests for; `DEFAULT_ALLOWED_ORIGINS` unless given. The
   * stack's own page (http://localhost:<web port> and http://127.0.0.1:<web port>) is always allowed.
   */
  readonly allowedOrigins?: readonly string[];
  /** The built web page to serve; web/dist unless given. */
  readonly webRoot?: string;
  /** Where key-api publishes usage events; both transports are consumed either way. @default 'sqs' */
  readonly transport?: Transport;
  /**
   * Further settings for the handlers, by the names of contracts/config.ts (e.g. a shorter key
   * cache window for a test); they override the stack's own.
   */
  readonly settings?: Readonly<Record<string, string>>;
  /** Log level of the handlers' Powertools loggers. @default 'WARN' when quiet, else 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

/** What `<dataDir>/endpoints.json` contains. */
export interface Endpoints {
  readonly region: string;
  readonly cognito: { readonly endpoint: string; readonly userPoolId: string; readonly clientId: string };
  readonly userApi: string;
  readonly keyApi: string;
  /** The example owner API behind the gate (examples/rates-api); its document is `<exampleApi>/openapi.json`. */
  readonly exampleApi: string;
  readonly dynamodb: string;
  readonly sqs: string;
  readonly kinesis: string;
  readonly lambda: string;
  /** The account owner's web page; it fetches its configuration from `<web>/config.json`. */
  readonly web: string;
}

export interface LocalStack {
  readonly endpoints: Endpoints;
  /** Names, URLs and ARNs of what bootstrap created (e.g. for wiring event source pollers). */
  readonly resources: BootstrapResult;
  /**
   * The handlers' settings, by the names of contracts/config.ts: what each deployable's config is
   * parsed from (and what a child process needs to compose the same handlers).
   */
  readonly env: Readonly<Record<string, string>>;
  /**
   * The AWS SDK's own variables (region, credentials, `AWS_ENDPOINT_URL_*`) for a child process
   * whose SDK clients should reach this stack's engines. This process's environment is not touched.
   */
  readonly awsEnv: Readonly<Record<string, string>>;
  /** Where this stack's engines are, for SDK clients built in this process. */
  readonly aws: AwsOptions;
  /** The local admin's sign-in (group `admins`: the user API's /admin routes), as in `<dataDir>/admin.json`. */
  readonly admin: LocalAdmin;
  /** Stops every server and DynamoDB Local, and releases the data dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** The page on its default port, and the Vite dev server of `npm run web:dev`. */
export const DEFAULT_ALLOWED_ORIGINS = [
  'http://localhost:5173',
  'http://127.0.0.1:5173',
  `http://localhost:${WEB_DEV_PORT}`,
  `http://127.0.0.1:${WEB_DEV_PORT}`,
];
export const ENDPOINTS_FILE = 'endpoints.json';
const LOCK_FILE = 'stack.lock';
/** Where the pid of DynamoDB Local is kept, to stop it if its stack died without cleaning up. */
const DYNAMODB_PID_FILE = 'dynamodb.pid';
const DYNAMODB_START_TIMEOUT_MS = 60_000;

/** How often the local alerts schedule runs: EventBridge's rate on AWS (one minute). */
const LOCAL_ALERT_SCHEDULE_MS = 60_000;
/**
 * Starts the whole of Tollgate on this machine: the emulators, the resources of
 * contracts/resources.ts, and the handlers behind local stand-ins for ALB, API Gateway and Lambda.
 *
 * Every handler is composed here from its config (parsed from `env` with its schema) and clients
 * pointed at this stack's engines; nothing is read from or written to `process.env`, so two stacks
 * in one process, on different ports and data dirs, stay apart.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const stage = options.stage ?? 'local';
  const quiet = options.quiet ?? false;
  const ports = options.ports;
  const dataDir = resolve(options.dataDir);
  const notice = (line: string) => {
    if (!quiet) process.stderr.write(`${line}\n`);
  };
  const url = (port: number) => `http://127.0.0.1:${port}`;

  checkJava();
  await mkdir(dataDir, { recursive: true });
  const releaseLock = await acquireLock(dataDir, notice);

  // Everything started so far, stopped in reverse order on stop() or on a failed start.
  const cleanups: Array<{ what: string; run: () => Promise<void> | void }> = [
    { what: 'lock', run: releaseLock },
  ];
  const cleanUp = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup.run();
      } catch (error) {
        process.stderr.write(`stopping ${cleanup.what} failed: ${(error as Error).message}\n`);
      }
    }
  };

  try {
    await checkPorts(ports);
    await rm(join(dataDir, ENDPOINTS_FILE), { force: true });

    // --- engines --------------------------------------------------------------------------
    const dynamodb = await startDynamoDbLocal(dataDir, ports.dynamodb, cleanups);

    const sqsServer = createServer(
      createSqsRequestHandler({
        port: ports.sqs,
        hostname: '127.0.0.1',
        region: LOCAL_REGION,
        accountId: '000000000000',
      }).requestHandler,
    );
    cleanups.push({ what: 'SQS', run: () => closeServer(sqsServer) });
    await listenOrExplain(sqsServer, ports, 'sqs');

    await mkdir(join(dataDir, 'kinesis'), { recursive: true });
    const kinesis = createKinesisServer({ port: ports.kinesis, path: join(dataDir, 'kinesis') });
    // Registered before listening: kinesalite has already opened its LevelDB, which must be closed.
    cleanups.push({ what: 'Kinesis', run: () => kinesis.close() });
    await listenOrExplain(kinesis.server, ports, 'kinesis');

    // Filled once the handlers are loaded; cognito-local only calls it on a confirmation.
    const functions: Record<string, InvokeHandler> = {};
    const lambda = await explainListenError(ports, 'lambda', () =>
      startLambdaInvokeServer({
        port: ports.lambda,
        functions,
        onFunctionError: (name, error) =>
          notice(`[lambda] ${name} failed: ${(error as Error)?.message ?? error}`),
      }),
    );
    cleanups.push({ what: 'Lambda invoke server', run: () => lambda.close() });

    const cognito = await explainListenError(ports, 'cognito', () =>
      startCognitoLocal({
        dataDir,
        port: ports.cognito,
        lambdaEndpoint: lambda.endpoint,
        triggerFunctions: { PostConfirmation: AUTH_TRIGGERS_FUNCTION },
        logLevel: quiet ? 'error' : 'warn',
        echoMail: !quiet,
      }),
    );
    cleanups.push({ what: 'Cognito', run: () => cognito.close() });

    await Promise.all([
      dynamodb.ready,
      waitForAnswer('SQS', () =>
        withClient(sqsClient(url(ports.sqs)), (c) => c.send(new ListQueuesCommand({}))),
      ),
      waitForAnswer('Kinesis', () =>
        withClient(kinesisClient(url(ports.kinesis)), (c) => c.send(new ListStreamsCommand({}))),
      ),
      waitForAnswer('Cognito', async () => {
        const response = await fetch(`${cognito.endpoint}/health`);
        if (!response.ok) throw new Error(`health check answered ${response.status}`);
      }),
    ]);

    // --- resources ------------------------------------------------------------------------
    // Redelivery and retention as the CDK stack derives them from the same late window.
    const redelivery = usageRedelivery(
      Number(options.settings?.[ENV.lateWindowMs] ?? DEFAULT_ACCEPTANCE_WINDOW.lateMs),
    );
    const resources = await bootstrap(
      stage,
      {
        dynamodb: url(ports.dynamodb),
        sqs: url(ports.sqs),
        kinesis: url(ports.kinesis),
        cognito: cognito.endpoint,
      },
      dataDir,
      redelivery,
    );

    const issuer = `${cognito.endpoint}/${resources.userPoolId}`;
    const env: Record<string, string> = {
      [ENV.accountsTable]: resources.tables.accounts,
      [ENV.keysTable]: resources.tables.keys,
      [ENV.usageTable]: resources.tables.usage,
      [ENV.plansTable]: resources.tables.plans,
      [ENV.keyPrefix]: 'tg',
      [ENV.transport]: options.transport ?? DEFAULT_TRANSPORT,
      [ENV.usageQueueUrl]: resources.usageQueueUrl,
      [ENV.usageDlqUrl]: resources.usageDlqUrl,
      [ENV.usageStreamName]: resources.usageStreamName,
      [ENV.userPoolClientId]: resources.userPoolClientId,
      [ENV.jwtIssuer]: issuer,
      [ENV.jwksUri]: `${issuer}/.well-known/jwks.json`,
      [ENV.allowedOrigins]: allowedOrigins(options.allowedOrigins, ports).join(','),
      ...options.settings,
    };
    const aws: AwsOptions = {
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      endpoints: { dynamodb: url(ports.dynamodb), sqs: url(ports.sqs), kinesis: url(ports.kinesis) },
    };
    const awsEnv: Record<string, string> = {
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: url(ports.dynamodb),
      AWS_ENDPOINT_URL_SQS: url(ports.sqs),
      AWS_ENDPOINT_URL_KINESIS: url(ports.kinesis),
      AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: cognito.endpoint,
      AWS_ENDPOINT_URL_LAMBDA: lambda.endpoint,
    };
    // The same compose functions as the Lambda handler files, over this stack's engines. There is
    // no CloudWatch here, so metrics are discarded; logs are Powertools JSON lines on stdout.
    const logLevel = options.logLevel ?? (quiet ? 'WARN' : 'INFO');
    const logger = (serviceName: string) => new Logger({ serviceName, logLevel });

    // --- handlers -------------------------------------------------------------------------
    functions[AUTH_TRIGGERS_FUNCTION] = composeAuthTriggers(loadAuthTriggersConfig(env), {
      aws,
      logger: logger(SERVICE_NAMES.authTriggers),
    }).handler as InvokeHandler;

    const keyApiHandler = composeKeyApi(loadKeyApiConfig(env), {
      aws,
      logger: logger(SERVICE_NAMES.keyApi),
      metrics: discardMetrics,
    }).handler;
    const keyApi = await explainListenError(ports, 'keyApi', () =>
      startAlbAdapter({
        port: ports.keyApi,
        handler: keyApiHandler,
        targetGroupArn: `arn:aws:elasticloadbalancing:${LOCAL_REGION}:000000000000:targetgroup/tollgate-${stage}-key-api/0000000000000000`,
        onHandlerError: (error) =>
          process.stderr.write(
            `[key-api] handler failed (answered 502): ${(error as Error)?.stack ?? error}\n`,
          ),
      }),
    );
    cleanups.push({ what: 'key-api', run: () => keyApi.close() });

    // The example owner API: its Lambda handler (Hono's ALB adapter) behind an ALB stand-in of
    // its own; on AWS the same ALB forwards /v1/* and /openapi.json to it (listener rules).
    const exampleApiHandler = composeRatesApi(loadGateConfig(env, SERVICE_NAMES.exampleApi), {
      aws,
      logger: logger(SERVICE_NAMES.exampleApi),
      metrics: discardMetrics,
    }).handler;
    const exampleApi = await explainListenError(ports, 'exampleApi', () =>
      startAlbAdapter({
        port: ports.exampleApi,
        handler: exampleApiHandler,
        targetGroupArn: `arn:aws:elasticloadbalancing:${LOCAL_REGION}:000000000000:targetgroup/tollgate-${stage}-example-api/0000000000000000`,
        onHandlerError: (error) =>
          process.stderr.write(
            `[example-api] handler failed (answered 502): ${(error as Error)?.stack ?? error}\n`,
          ),
      }),
    );
    cleanups.push({ what: 'example API', run: () => exampleApi.close() });

    const userApp = composeUserApi(loadUserApiConfig(env), {
      aws,
      logger: logger(SERVICE_NAMES.userApi),
      metrics: discardMetrics,
    });
    const userApiServer = await explainListenError(ports, 'userApi', () =>
      serveHono(userApp.fetch, ports.userApi),
    );
    cleanups.push({ what: 'user-api', run: () => closeServer(userApiServer) });

    // The page and its /config.json, as S3 + CloudFront serve them on AWS.
    const webApp = createLocalSiteApp({
      ...(options.webRoot ? { root: options.webRoot } : {}),
      config: {
        region: LOCAL_REGION,
        cognito: {
          userPoolId: resources.userPoolId,
          clientId: resources.userPoolClientId,
          endpoint: cognito.endpoint,
          passwordPolicy: { ...userPool.passwordPolicy },
        },
        userApi: url(ports.userApi),
        keyApi: keyApi.endpoint,
      },
    });
    const webServer = await explainListenError(ports, 'web', () => serveHono(webApp.fetch, ports.web));
    cleanups.push({ what: 'web page', run: () => closeServer(webServer) });

    // The metering consumer, fed like Lambda's event source mappings feed it on AWS. Both run:
    // key-api publishes to whichever transport TOLLGATE_TRANSPORT selects, the other stays idle.
    const alertsCognito = new CognitoIdentityProviderClient({
      region: LOCAL_REGION,
      endpoint: cognito.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    cleanups.push({ what: 'alerts Cognito client', run: () => alertsCognito.destroy() });
    const metering = composeMetering(
      // Alerts read the owner's current address from the user pool, as on AWS.
      loadMeteringConfig({ [ENV.alertUserPoolId]: resources.userPoolId, ...env }),
      {
        aws,
        clients: { cognito: alertsCognito },
        logger: logger(SERVICE_NAMES.metering),
        metrics: discardMetrics,
        // Quota alerts go where the verification codes go: the captured outbox (SES on AWS), whose
        // delivery event confirms the send, as SES's send event does through EventBridge.
        alerts: localAlertSender({
          dataDir,
          notice,
          onDelivered: (alertId, messageId) =>
            metering.alerts?.confirmDelivered(alertId, messageId) ?? Promise.resolve(false),
        }),
      },
    );
    const meteringHandler = metering.handler;
    // The alerts schedule: EventBridge's rule every minute on AWS (infra/cdk/constructs/alert-email.ts),
    // the same entry here; a run still going when the next is due is not overlapped.
    let alertsRun: Promise<unknown> | undefined;
    const alertsTimer = setInterval(() => {
      if (alertsRun || !metering.alertsHandler) return;
      alertsRun = metering
        .alertsHandler({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} })
        .catch((error: unknown) => notice(`[metering] alerts schedule failed: ${(error as Error)?.message}`))
        .finally(() => {
          alertsRun = undefined;
        });
    }, LOCAL_ALERT_SCHEDULE_MS);
    alertsTimer.unref();
    cleanups.push({
      what: 'alerts schedule',
      run: async () => {
        clearInterval(alertsTimer);
        await alertsRun;
      },
    });
    const pollerError = (source: string) => (error: unknown) =>
      notice(`[metering] ${source} batch failed: ${(error as Error)?.message ?? error}`);
    const pollerSqs = sqsClient(url(ports.sqs));
    const sqsPoller = new SqsPoller({
      sqs: pollerSqs,
      queueUrl: resources.usageQueueUrl,
      queueArn: resources.usageQueueArn,
      region: LOCAL_REGION,
      handler: meteringHandler,
      // The event source mapping's settings in CDK, from the same definition.
      batchSize: usageQueue.eventSource.batchSize,
      batchingWindowMs: usageQueue.eventSource.maxBatchingWindowSeconds * 1000,
      concurrency: LOCAL_SQS_BATCHES_IN_FLIGHT,
      onError: pollerError('SQS'),
    });
    sqsPoller.start();
    cleanups.push({
      what: 'SQS poller',
      run: async () => {
        await sqsPoller.stop();
        pollerSqs.destroy();
      },
    });
    const pollerKinesis = kinesisClient(url(ports.kinesis));
    const kinesisPoller = new KinesisPoller({
      kinesis: pollerKinesis,
      streamName: resources.usageStreamName,
      streamArn: resources.usageStreamArn,
      region: LOCAL_REGION,
      handler: meteringHandler,
      batchSize: usageStream.eventSource.batchSize,
      batchingWindowMs: usageStream.eventSource.maxBatchingWindowSeconds * 1000,
      // Next to the stream's own data, so a restart resumes after the last record consumed.
      checkpointFile: join(dataDir, 'metering', 'kinesis-checkpoints.json'),
      // Retried until the record nears the late window, then described in the dead-letter queue
      // (npm run usage:redrive reads it back), as the event source mapping in CDK does.
      maxRecordAgeMs: redelivery.stream.maxRecordAgeSeconds * 1000,
      maxRetryAttempts: redelivery.stream.retryAttempts,
      bisectBatchOnError: true,
      onFailure: async (description) => {
        await pollerSqs.send(
          new SendMessageCommand({
            QueueUrl: resources.usageDlqUrl,
            MessageBody: JSON.stringify(description),
          }),
        );
      },
      onError: pollerError('Kinesis'),
    });
    cleanups.push({
      what: 'Kinesis poller',
      run: async () => {
        await kinesisPoller.stop();
        pollerKinesis.destroy();
      },
    });
    await kinesisPoller.start();

    // --- hand-over ------------------------------------------------------------------------
    const endpoints: Endpoints = {
      region: LOCAL_REGION,
      cognito: {
        endpoint: cognito.endpoint,
        userPoolId: resources.userPoolId,
        clientId: resources.userPoolClientId,
      },
      userApi: url(ports.userApi),
      keyApi: keyApi.endpoint,
      exampleApi: exampleApi.endpoint,
      dynamodb: url(ports.dynamodb),
      sqs: url(ports.sqs),
      kinesis: url(ports.kinesis),
      lambda: lambda.endpoint,
      web: url(ports.web),
    };
    // Written last and atomically: once the file exists, everything in it answers.
    const endpointsPath = join(dataDir, ENDPOINTS_FILE);
    await writeFile(`${endpointsPath}.tmp`, `${JSON.stringify(endpoints, null, 2)}\n`);
    await rename(`${endpointsPath}.tmp`, endpointsPath);
    cleanups.push({ what: 'endpoints.json', run: () => rm(endpointsPath, { force: true }) });

    let stopping: Promise<void> | undefined;
    return {
      endpoints,
      resources,
      env,
      awsEnv,
      aws,
      admin: resources.admin,
      stop: () => {
        stopping ??= cleanUp();
        return stopping;
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** The configured (or default) origins, plus the stack's own page on whichever port it is. */
function allowedOrigins(configured: readonly string[] | undefined, ports: LocalPorts): string[] {
  const ownPage = [`http://localhost:${ports.web}`, `http://127.0.0.1:${ports.web}`];
  return [...new Set([...(configured ?? DEFAULT_ALLOWED_ORIGINS), ...ownPage])];
}

// ---------------------------------------------------------------------------------------------
// Preconditions

function checkJava(): void {
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

async function checkPorts(ports: LocalPorts): Promise<void> {
  for (const name of PORT_NAMES) {
    const problem = await portProblem(ports[name]);
    if (problem) throw portError(ports, name, problem);
  }
}

function portError(ports: LocalPorts, name: keyof LocalPorts, code: string): LocalStackError {
  const port = ports[name];
  const label = PORT_LABELS[name];
  if (code === 'EADDRINUSE') {
    return new LocalStackError(
      `port ${port} (${label}) is in use: stop what uses it or set ${PORT_ENV[name]}`,
    );
  }
  return new LocalStackError(`port ${port} (${label}) cannot be used (${code}): set ${PORT_ENV[name]}`);
}

async function explainListenError<T>(ports: LocalPorts, name: keyof LocalPorts, start: () => Promise<T>) {
  try {
    return await start();
  } catch (error) {
    // Something took the port between the check and now.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') throw portError(ports, name, code);
    throw error;
  }
}

function listenOrExplain(server: NetServer, ports: LocalPorts, name: keyof LocalPorts): Promise<void> {
  return explainListenError(ports, name, () => listen(server, ports[name]));
}

/**
 * One stack per data dir: two would share DynamoDB's and Kinesis's files. The lock holds the
 * owner's pid; a lock whose owner is gone (killed, crashed) is taken over, after stopping the
 * DynamoDB Local it may have left behind.
 */
async function acquireLock(dataDir: string, notice: (line: string) => void): Promise<() => void> {
  const lockPath = join(dataDir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
    }
    const owner = Number.parseInt(readText(lockPath) ?? '', 10);
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
      throw new LocalStackError(`another Tollgate stack is running (pid ${owner}, lock ${lockPath})`);
    }
    await stopOrphanedDynamoDb(dataDir, notice);
    rmSync(lockPath, { force: true });
    notice(`removed stale lock from pid ${Number.isInteger(owner) ? owner : 'unknown'}`);
  }

  // If this process ends without stop() (uncaught error, process.exit), don't leave a lock
  // behind that the next start has to explain.
  const releaseOnExit = () => releaseLockFile(lockPath);
  process.on('exit', releaseOnExit);
  return () => {
    process.off('exit', releaseOnExit);
    releaseLockFile(lockPath);
  };
}

function releaseLockFile(lockPath: string): void {
  if (Number.parseInt(readText(lockPath) ?? '', 10) === process.pid) rmSync(lockPath, { force: true });
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stopOrphanedDynamoDb(dataDir: string, notice: (line: string) => void): Promise<void> {
  const pidPath = join(dataDir, DYNAMODB_PID_FILE);
  const pid = Number.parseInt(readText(pidPath) ?? '', 10);
  rmSync(pidPath, { force: true });
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
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

// ---------------------------------------------------------------------------------------------
// Engines

interface StartedDynamoDb {
  /** Resolves once DynamoDB Local answers requests. */
  readonly ready: Promise<void>;
}

async function startDynamoDbLocal(
  dataDir: string,
  port: number,
  cleanups: Array<{ what: string; run: () => Promise<void> | void }>,
): Promise<StartedDynamoDb> {
  const dbPath = join(dataDir, 'dynamodb');
  await mkdir(dbPath, { recursive: true });
  // Detached into its own process group: a Ctrl-C in the terminal reaches only this process,
  // which stops the pollers and servers that still need DynamoDB before stopping DynamoDB itself.
  // (An exit hook below, and the stale-lock check of the next start, keep it from being orphaned.)
  // On 127.0.0.1 only (dynamodb-local.ts): the jar by itself listens on every interface.
  const started = spawnDynamoDbLocal({ port, path: dbPath, sharedDb: true, detached: true });
  const child: ChildProcess = started.child;
  if (started.exposed) {
    process.stderr.write(
      `warning: DynamoDB Local listens on every interface (port ${port}): this Java has no compiler to run its loopback launcher; install a JDK 17+ or firewall the port\n`,
    );
  }

  // Its banner and errors: read continuously (a full pipe would block the JVM) and keep the tail
  // for the message when it dies.
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

  let exited: { code: number | null; signal: NodeJS.Signals | null; error?: Error } | undefined;
  let expectingExit = false;
  const describeExit = () =>
    exited?.error
      ? `could not be started: ${exited.error.message}`
      : `exited (${exited?.signal ?? `code ${exited?.code}`}): ${output.at(-1) ?? 'no output'}`;
  const exit = new Promise<void>((resolveExit) => {
    const onEnd = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (exited) return;
      exited = { code, signal, ...(error ? { error } : {}) };
      rmSync(join(dataDir, DYNAMODB_PID_FILE), { force: true });
      if (!expectingExit) process.stderr.write(`DynamoDB Local ${describeExit()}\n`);
      resolveExit();
    };
    child.once('exit', (code, signal) => onEnd(code, signal));
    // A failed spawn emits 'error' and no 'exit'.
    child.once('error', (error) => onEnd(null, null, error));
  });
  if (child.pid) writeFileSync(join(dataDir, DYNAMODB_PID_FILE), `${child.pid}\n`);

  // The JVM must not outlive this process, whichever way it ends.
  const killOnExit = () => child.kill('SIGTERM');
  process.on('exit', killOnExit);
  cleanups.push({
    what: 'DynamoDB Local',
    run: async () => {
      process.off('exit', killOnExit);
      expectingExit = true;
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    },
  });

  const endpoint = `http://127.0.0.1:${port}`;
  const ready = poll(
    'DynamoDB Local to answer',
    async () => {
      if (exited) throw new LocalStackError(`DynamoDB Local ${describeExit()} during start-up`);
      await withClient(dynamoDbClient(endpoint), (client) =>
        client.send(new ListTablesCommand({ Limit: 1 })),
      );
      return true;
    },
    { timeoutMs: DYNAMODB_START_TIMEOUT_MS },
  ).then(() => undefined);
  // Awaited only after the other engines start; if one of them fails first, the stack stops and
  // this rejects with nobody listening yet, which must not become an unhandled rejection.
  ready.catch(() => {});
  return { ready };
}

async function waitForAnswer(what: string, probe: () => Promise<unknown>): Promise<void> {
  await poll(`${what} to answer`, async () => {
    await probe();
    return true;
  });
}

async function withClient<C extends { destroy(): void }, R>(
  client: C,
  use: (client: C) => Promise<R>,
): Promise<R> {
  try {
    return await use(client);
  } finally {
    client.destroy();
  }
}

function serveHono(fetch: Parameters<typeof serve>[0]['fetch'], port: number): Promise<Server> {
  return new Promise((resolveServer, reject) => {
    const server = serve({ fetch, port, hostname: '127.0.0.1' }, () => {
      server.off('error', reject);
      resolveServer(server as Server);
    });
    server.once('error', reject);
  });
}

/** Reads `<dataDir>/endpoints.json` of a running stack, if there is one. */
export function readEndpoints(dataDir: string): Endpoints | undefined {
  const path = join(resolve(dataDir), ENDPOINTS_FILE);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as Endpoints;
}
