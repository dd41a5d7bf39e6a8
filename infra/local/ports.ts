import { createServer, type Server } from 'node:net';
import { LocalStackError } from './errors';

export interface LocalPorts {
  readonly dynamodb: number;
  readonly sqs: number;
  readonly kinesis: number;
  readonly cognito: number;
  readonly lambda: number;
  readonly keyApi: number;
  readonly userApi: number;
  /** The example owner API behind the gate (examples/rates-api), behind its own ALB stand-in. */
  readonly exampleApi: number;
  /** The account owner's web page (web/dist) and its generated /config.json. */
  readonly web: number;
}

export type PortName = keyof LocalPorts;

export const DEFAULT_PORTS: LocalPorts = {
  dynamodb: 8000,
  sqs: 9324,
  kinesis: 4567,
  cognito: 9229,
  lambda: 9001,
  keyApi: 3000,
  userApi: 3001,
  exampleApi: 3002,
  web: 5173,
};

export const PORT_ENV: Readonly<Record<PortName, string>> = {
  dynamodb: 'TOLLGATE_PORT_DYNAMODB',
  sqs: 'TOLLGATE_PORT_SQS',
  kinesis: 'TOLLGATE_PORT_KINESIS',
  cognito: 'TOLLGATE_PORT_COGNITO',
  lambda: 'TOLLGATE_PORT_LAMBDA',
  keyApi: 'TOLLGATE_PORT_KEY_API',
  userApi: 'TOLLGATE_PORT_USER_API',
  exampleApi: 'TOLLGATE_PORT_EXAMPLE_API',
  web: 'TOLLGATE_PORT_WEB',
};

/** How each port is named in messages. */
export const PORT_LABELS: Readonly<Record<PortName, string>> = {
  dynamodb: 'DynamoDB',
  sqs: 'SQS',
  kinesis: 'Kinesis',
  cognito: 'Cognito',
  lambda: 'Lambda invoke',
  keyApi: 'key-api',
  userApi: 'user-api',
  exampleApi: 'example API',
  web: 'web page',
};

export const PORT_NAMES = Object.keys(DEFAULT_PORTS) as PortName[];

/** Ports from `TOLLGATE_PORT_*`, defaults for the rest. Throws LocalStackError on a bad value. */
export function resolvePorts(env: Record<string, string | undefined> = process.env): LocalPorts {
  const ports = { ...DEFAULT_PORTS };
  for (const name of PORT_NAMES) {
    const raw = env[PORT_ENV[name]]?.trim();
    if (raw === undefined || raw === '') continue;
    // Number('') and Number('1e3') would slip through a plain Number() check.
    const port = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new LocalStackError(`${PORT_ENV[name]} must be a port number from 1 to 65535, got "${raw}"`);
    }
    ports[name] = port;
  }
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
