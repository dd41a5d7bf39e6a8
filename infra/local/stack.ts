import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_ACCEPTANCE_WINDOW, ENV } from '../../contracts/config';
import { usageRedelivery } from '../../contracts/redelivery';
import type { Transport } from '../../contracts/transport';
import type { AwsOptions } from '../../services/platform/aws-clients';
import { type BootstrapResult, bootstrap, type LocalAdmin } from './bootstrap';
import { LOCAL_REGION, localAws } from './local-aws';
import { MetricStore } from './ops/metric-store';
import { startOpsPage } from './ops/ops-step';
import { checkPorts, type LocalPorts } from './ports';
import {
  registerAuthTriggers,
  type Served,
  startExampleApi,
  startKeyApi,
  startUserApi,
  startWebPage,
} from './steps/apis';
import { type StripeStep, startBillingJobs, startStripe } from './steps/billing';
import { checkJava, startDynamoDb, stopOrphanedDynamoDb } from './steps/dynamodb';
import { type LambdaInvoke, startCognito, startKinesis, startLambdaInvoke, startSqs } from './steps/engines';
import { acquireLock } from './steps/lock';
import { startMetering } from './steps/metering';
import { type Engine, type StackContext, StopList, type Stoppable } from './steps/step';
import { type Wiring, wireHandlers } from './steps/wiring';

export { LocalStackError } from './errors';
export type { LocalPorts } from './ports';
export { DEFAULT_ALLOWED_ORIGINS } from './steps/wiring';

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
  /** How often the local billing export runs. @default LOCAL_EXPORT_INTERVAL_MS (steps/billing.ts) */
  readonly billing?: { readonly exportIntervalMs?: number };
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
  /** The Stripe stand-in's API (test infrastructure: docs/stripe-stand-in.md); `<dataDir>/billing.json` has its key. */
  readonly stripe: string;
  /** The billing webhook the stand-in delivers its signed events to. */
  readonly billingWebhook: string;
  /** The ops page (admins): the operations dashboard's widgets from the functions' metrics. */
  readonly ops: string;
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

export const ENDPOINTS_FILE = 'endpoints.json';

/**
 * Starts the whole of Tollgate on this machine: the emulators, the resources of
 * contracts/resources.ts, and the handlers behind local stand-ins for ALB, API Gateway and Lambda.
 * Each part is one start step (steps/), run in this order and stopped in the reverse order, on
 * stop() or as soon as a later step fails: the lock, the engines, bootstrap, the deployables,
 * endpoints.json.
 *
 * Every handler is composed here from its config (parsed from `env` with its schema) and clients
 * pointed at this stack's engines; nothing is read from or written to `process.env`, so two stacks
 * in one process, on different ports and data dirs, stay apart.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const context = stackContext(options);
  const { dataDir, notice } = context;
  checkJava();
  await mkdir(dataDir, { recursive: true });
  const stops = new StopList();
  stops.add('lock', await acquireLock(dataDir, notice, () => stopOrphanedDynamoDb(dataDir, notice)));
  try {
    await checkPorts(context.ports);
    await rm(join(dataDir, ENDPOINTS_FILE), { force: true });
    const engines = await startEngines(context, stops);
    const aws = localAws({
      dynamodb: engines.dynamodb.endpoint,
      sqs: engines.sqs.endpoint,
      kinesis: engines.kinesis.endpoint,
    });
    const resources = await bootstrap({
      stage: context.stage,
      aws,
      cognitoEndpoint: engines.cognito.endpoint,
      dataDir,
      redelivery: context.redelivery,
    });
    const stripe = stops.add('Stripe stand-in', await startStripe(context, resources, aws));
    const wiring = wireHandlers({
      ports: context.ports,
      engines: endpointsOf(engines),
      resources,
      logLevel: options.logLevel ?? (context.quiet ? 'WARN' : 'INFO'),
      ...(options.transport ? { transport: options.transport } : {}),
      ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
      settings: { ...stripe.settings, ...options.settings },
    });
    const apis = await startDeployables(context, { wiring, engines, resources, options, stripe }, stops);
    const endpoints = describeEndpoints(engines, resources, apis, stripe);
    stops.add('endpoints.json', await writeEndpoints(dataDir, endpoints));

    let stopping: Promise<void> | undefined;
    return {
      endpoints,
      resources,
      env: wiring.env,
      awsEnv: wiring.awsEnv,
      aws: wiring.aws,
      admin: resources.admin,
      stop: () => {
        stopping ??= stops.stopAll();
        return stopping;
      },
    };
  } catch (error) {
    await stops.stopAll();
    throw error;
  }
}

function stackContext(options: LocalStackOptions): StackContext {
  const quiet = options.quiet ?? false;
  return {
    stage: options.stage ?? 'local',
    quiet,
    ports: options.ports,
    dataDir: resolve(options.dataDir),
    // Redelivery and retention as the CDK stack derives them from the same late window.
    redelivery: usageRedelivery(
      Number(options.settings?.[ENV.lateWindowMs] ?? DEFAULT_ACCEPTANCE_WINDOW.lateMs),
    ),
    metrics: new MetricStore(),
    notice: (line) => {
      if (!quiet) process.stderr.write(`${line}\n`);
    },
  };
}

interface Engines {
  readonly dynamodb: Engine;
  readonly sqs: Engine;
  readonly kinesis: Engine;
  readonly lambda: LambdaInvoke;
  readonly cognito: Engine;
}

/** Each engine starts listening in turn; then all are waited for at once. */
async function startEngines(context: StackContext, stops: StopList): Promise<Engines> {
  const dynamodb = stops.add('DynamoDB Local', await startDynamoDb(context));
  const sqs = stops.add('SQS', await startSqs(context));
  const kinesis = stops.add('Kinesis', await startKinesis(context));
  const lambda = stops.add('Lambda invoke server', await startLambdaInvoke(context));
  const cognito = stops.add('Cognito', await startCognito(context, lambda));
  await Promise.all([dynamodb, sqs, kinesis, cognito].map((engine) => engine.ready()));
  return { dynamodb, sqs, kinesis, lambda, cognito };
}

function endpointsOf(engines: Engines) {
  return {
    dynamodb: engines.dynamodb.endpoint,
    sqs: engines.sqs.endpoint,
    kinesis: engines.kinesis.endpoint,
    cognito: engines.cognito.endpoint,
    lambda: engines.lambda.endpoint,
  };
}

interface Apis {
  readonly keyApi: Served;
  readonly exampleApi: Served;
  readonly userApi: Served;
  readonly web: Served;
  readonly billingWebhook: Served;
  readonly ops: Served;
}

/** The deployables, composed from `wiring` as their Lambda handler files compose them. */
async function startDeployables(
  context: StackContext,
  started: {
    wiring: Wiring;
    engines: Engines;
    resources: BootstrapResult;
    options: LocalStackOptions;
    stripe: StripeStep;
  },
  stops: StopList,
): Promise<Apis> {
  const { wiring, engines, resources, options, stripe } = started;
  registerAuthTriggers(engines.lambda, wiring);
  const keyApi = stops.add('key-api', await startKeyApi(context, wiring));
  const exampleApi = stops.add('example API', await startExampleApi(context, wiring));
  const userApi = stops.add('user-api', await startUserApi(context, wiring, stripe.billing.secretKey));
  const web = stops.add(
    'web page',
    await startWebPage(context, {
      resources,
      cognitoEndpoint: engines.cognito.endpoint,
      userApi: userApi.endpoint,
      keyApi: keyApi.endpoint,
      env: wiring.env,
      ...(options.webRoot ? { webRoot: options.webRoot } : {}),
    }),
  );
  stops.add('metering', await startMetering(context, wiring, resources, engines.cognito.endpoint));
  const billingWebhook = stops.add(
    'billing jobs',
    await startBillingJobs(context, wiring, stripe, options.billing ?? {}),
  );
  const ops = stops.add(
    'ops page',
    await startOpsPage(context, { wiring, resources, cognitoEndpoint: engines.cognito.endpoint }),
  );
  return { keyApi, exampleApi, userApi, web, billingWebhook, ops };
}

function describeEndpoints(
  engines: Engines,
  resources: BootstrapResult,
  apis: Apis,
  stripe: StripeStep,
): Endpoints {
  return {
    region: LOCAL_REGION,
    cognito: {
      endpoint: engines.cognito.endpoint,
      userPoolId: resources.userPoolId,
      clientId: resources.userPoolClientId,
    },
    userApi: apis.userApi.endpoint,
    keyApi: apis.keyApi.endpoint,
    exampleApi: apis.exampleApi.endpoint,
    dynamodb: engines.dynamodb.endpoint,
    sqs: engines.sqs.endpoint,
    kinesis: engines.kinesis.endpoint,
    lambda: engines.lambda.endpoint,
    web: apis.web.endpoint,
    stripe: stripe.standIn.url,
    billingWebhook: apis.billingWebhook.endpoint,
    ops: apis.ops.endpoint,
  };
}

/** Written last and atomically: once the file exists, everything in it answers. */
async function writeEndpoints(dataDir: string, endpoints: Endpoints): Promise<Stoppable> {
  const path = join(dataDir, ENDPOINTS_FILE);
  await writeFile(`${path}.tmp`, `${JSON.stringify(endpoints, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
  return { stop: () => rm(path, { force: true }) };
}

/** Reads `<dataDir>/endpoints.json` of a running stack, if there is one. */
export function readEndpoints(dataDir: string): Endpoints | undefined {
  const path = join(resolve(dataDir), ENDPOINTS_FILE);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as Endpoints;
}
