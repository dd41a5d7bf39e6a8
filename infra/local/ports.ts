import { createServer, type Server } from 'node:net';
import { LocalStackError } from './errors';

/**
 * Every port the local stack listens on, one entry per service: its default (what `npm start` and
 * docs/local.md use), the variable that moves it, and how messages name it.
 */
export const LOCAL_SERVICES = {
  dynamodb: { defaultPort: 8000, env: 'TOLLGATE_PORT_DYNAMODB', label: 'DynamoDB' },
  sqs: { defaultPort: 9324, env: 'TOLLGATE_PORT_SQS', label: 'SQS' },
  kinesis: { defaultPort: 4567, env: 'TOLLGATE_PORT_KINESIS', label: 'Kinesis' },
  cognito: { defaultPort: 9229, env: 'TOLLGATE_PORT_COGNITO', label: 'Cognito' },
  lambda: { defaultPort: 9001, env: 'TOLLGATE_PORT_LAMBDA', label: 'Lambda invoke' },
  keyApi: { defaultPort: 3000, env: 'TOLLGATE_PORT_KEY_API', label: 'key-api' },
  userApi: { defaultPort: 3001, env: 'TOLLGATE_PORT_USER_API', label: 'user-api' },
  /** The example owner API behind the gate (examples/rates-api), behind its own ALB stand-in. */
  exampleApi: { defaultPort: 3002, env: 'TOLLGATE_PORT_EXAMPLE_API', label: 'example API' },
  /** The account owner's web page (web/dist) and its generated /config.json. */
  web: { defaultPort: 5173, env: 'TOLLGATE_PORT_WEB', label: 'web page' },
  /** The local Stripe stand-in (infra/local/stripe): test infrastructure, docs/stripe-stand-in.md. */
  stripe: { defaultPort: 12111, env: 'TOLLGATE_PORT_STRIPE', label: 'Stripe stand-in' },
  /** The billing webhook Stripe delivers to (services/billing-jobs; API Gateway on AWS). */
  billingWebhook: { defaultPort: 3003, env: 'TOLLGATE_PORT_BILLING_WEBHOOK', label: 'billing webhook' },
  /** The ops page: the operations dashboard's widgets from the functions' metrics (infra/local/ops). */
  ops: { defaultPort: 3004, env: 'TOLLGATE_PORT_OPS', label: 'ops page' },
} as const satisfies Record<string, { defaultPort: number; env: string; label: string }>;

export type PortName = keyof typeof LOCAL_SERVICES;

/** The port of each service of LOCAL_SERVICES. */
export type LocalPorts = { readonly [name in PortName]: number };

export const PORT_NAMES = Object.keys(LOCAL_SERVICES) as PortName[];

function byName<T>(value: (name: PortName) => T): { readonly [name in PortName]: T } {
  return Object.fromEntries(PORT_NAMES.map((name) => [name, value(name)])) as { [name in PortName]: T };
}

export const DEFAULT_PORTS: LocalPorts = byName((name) => LOCAL_SERVICES[name].defaultPort);

/** The `TOLLGATE_PORT_*` variable of each port. */
export const PORT_ENV: Readonly<Record<PortName, string>> = byName((name) => LOCAL_SERVICES[name].env);

/** Ports from `TOLLGATE_PORT_*`, defaults for the rest. Throws LocalStackError on a bad value. */
export function resolvePorts(env: Record<string, string | undefined> = process.env): LocalPorts {
  const ports = byName((name) => {
    const variable = LOCAL_SERVICES[name].env;
    const raw = env[variable]?.trim();
    if (raw === undefined || raw === '') return LOCAL_SERVICES[name].defaultPort;
    // Number('') and Number('1e3') would slip through a plain Number() check.
    const port = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new LocalStackError(`${variable} must be a port number from 1 to 65535, got "${raw}"`);
    }
    return port;
  });
  assertDistinct(ports);
  return ports;
}

function assertDistinct(ports: LocalPorts): void {
  const owner = new Map<number, PortName>();
  for (const name of PORT_NAMES) {
    const other = owner.get(ports[name]);
    if (other) {
      throw new LocalStackError(
        `${PORT_ENV[other]} and ${PORT_ENV[name]} both resolve to port ${ports[name]}: give each service its own port`,
      );
    }
    owner.set(ports[name], name);
  }
}

/**
 * Ports the OS reports free right now, all distinct (the listeners stay open until every port is
 * picked). For tests, which must not collide with a developer's `npm start` or with each other.
 */
export async function findFreePorts(): Promise<LocalPorts> {
  const servers: Server[] = [];
  try {
    const picked: Partial<Record<PortName, number>> = {};
    for (const name of PORT_NAMES) {
      const server = createServer();
      servers.push(server);
      picked[name] = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const address = server.address();
          if (address && typeof address === 'object') resolve(address.port);
          else reject(new Error('listening socket has no port'));
        });
      });
    }
    return picked as LocalPorts;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/**
 * Why the port cannot be listened on (`EADDRINUSE`, `EACCES`, ...), or undefined when it is free
 * on every local address.
 */
export async function portProblem(port: number): Promise<string | undefined> {
  // DynamoDB Local binds every interface, so a listener on any address would stop it: probe the
  // wildcard address (which conflicts with all of them) and loopback (what our servers bind).
  for (const host of [undefined, '127.0.0.1']) {
    const problem = await new Promise<string | undefined>((resolve) => {
      const probe = createServer();
      probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(undefined)));
    });
    if (problem) return problem;
  }
  return undefined;
}

/** Fails with a message naming the port's variable when any of the ports cannot be listened on. */
export async function checkPorts(ports: LocalPorts): Promise<void> {
  for (const name of PORT_NAMES) {
    const problem = await portProblem(ports[name]);
    if (problem) throw portError(ports, name, problem);
  }
}

/**
 * Runs `start`, which listens on the port `name`; a port taken since checkPorts (EADDRINUSE,
 * EACCES) fails with the same message as checkPorts gives.
 */
export async function listenAs<T>(ports: LocalPorts, name: PortName, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') throw portError(ports, name, code);
    throw error;
  }
}

function portError(ports: LocalPorts, name: PortName, code: string): LocalStackError {
  const { label, env } = LOCAL_SERVICES[name];
  if (code === 'EADDRINUSE') {
    return new LocalStackError(`port ${ports[name]} (${label}) is in use: stop what uses it or set ${env}`);
  }
  return new LocalStackError(`port ${ports[name]} (${label}) cannot be used (${code}): set ${env}`);
}
