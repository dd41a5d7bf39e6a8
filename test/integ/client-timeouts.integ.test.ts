import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import type { PostConfirmationTriggerEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { ADMIN_GROUP } from '../../contracts/plans';
import { composeAuthTriggers } from '../../services/auth-triggers/compose';
import { loadAuthTriggersConfig } from '../../services/auth-triggers/config';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import type { TokenVerifier } from '../../services/user-api/token-verifier';
import { requestApp } from '../support/app-request';
import { LOCAL_CREDENTIALS } from '../support/aws';
import { recordFigures } from '../support/figures';

// user-api and auth-triggers as their handlers compose them (their own clients, with the shipped
// budgets of services/platform/aws-clients.ts), pointed at a DynamoDB that accepts connections and
// never answers: a local TCP server that reads and writes nothing back. Without request timeouts
// the calls would wait until the function timed out (API Gateway's 504, a failed Cognito trigger);
// with them, user-api answers 503 with `retry-after` well inside its timeout.

/** The user-api function's timeout (infra/cdk/constructs/tollgate-function.ts, the default). */
const USER_API_FUNCTION_TIMEOUT_MS = 10_000;
/** How long Cognito waits for a Lambda trigger. */
const COGNITO_TRIGGER_WAIT_MS = 5_000;
/** Room left for the rest of an invocation (cold start, the token check, the answer). */
const MARGIN_MS = 2_000;

const { region, dynamodb } = inject('endpoints');
const env = inject('env');

/** Accepts every connection and never answers: what a hung dependency looks like to a client. */
async function startHungServer(): Promise<{
  endpoint: string;
  connections: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.resume(); // read the request, answer nothing
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    connections: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const signedIn = (userId: string): TokenVerifier => ({
  verify: async () => ({
    userId,
    email: `${userId}@example.com`,
    userName: userId,
    authTime: new Date(),
    groups: [ADMIN_GROUP],
  }),
});

function userApi(dynamoEndpoint: string, userId: string) {
  const config = loadUserApiConfig({
    ...env,
    [ENV.jwtIssuer]: 'http://127.0.0.1:9/pool',
    [ENV.jwksUri]: 'http://127.0.0.1:9/pool/.well-known/jwks.json',
    [ENV.userPoolClientId]: 'client',
  });
  return composeUserApi(config, {
    aws: { region, credentials: LOCAL_CREDENTIALS, endpoints: { dynamodb: dynamoEndpoint } },
    verifier: signedIn(userId),
    logger: new Logger({ serviceName: 'client-timeouts-test', logLevel: 'SILENT' }),
    metrics: { addMetric: () => {} },
  });
}

/** Each route a user or an admin calls, and what a healthy DynamoDB answers it. */
const ROUTES: Array<{ method: string; path: string; body?: unknown; healthy: number }> = [
  { method: 'GET', path: '/me', healthy: 200 },
  { method: 'GET', path: '/keys', healthy: 200 },
  { method: 'POST', path: '/keys', body: { name: 'hung' }, healthy: 201 },
  { method: 'GET', path: '/usage', healthy: 200 },
  { method: 'GET', path: '/me/plan', healthy: 200 },
  { method: 'GET', path: '/admin/accounts', healthy: 200 },
  { method: 'PUT', path: `/admin/plans/hung-${process.pid}`, body: { name: 'Hung' }, healthy: 201 },
];

describe('a hung DynamoDB: answered inside the timeout, by the shipped client budgets', () => {
  let hung: Awaited<ReturnType<typeof startHungServer>>;
  const figures: Record<string, unknown> = {};
  beforeAll(async () => {
    hung = await startHungServer();
  });
  afterAll(async () => {
    await hung.close();
    await recordFigures('client-timeouts', {
      parameters: {
        userApiFunctionTimeoutMs: USER_API_FUNCTION_TIMEOUT_MS,
        cognitoTriggerWaitMs: COGNITO_TRIGGER_WAIT_MS,
        marginMs: MARGIN_MS,
      },
      ...figures,
    });
  });

  it('user-api: every route 503 service_unavailable with retry-after, within its timeout minus a margin', async () => {
    const userId = `acc_hung_${randomUUID()}`;
    // The same routes against the real DynamoDB Local first: they work, so what follows is the hang.
    const healthy = userApi(dynamodb, userId);
    for (const route of ROUTES) {
      const response = await requestApp(healthy, route.path, {
        token: 't',
        method: route.method,
        body: route.body,
      });
      expect(response.status, `${route.method} ${route.path}`).toBe(route.healthy);
    }

    const app = userApi(hung.endpoint, userId);
    const answers = await Promise.all(
      ROUTES.map(async (route) => {
        const started = performance.now();
        const response = await requestApp(app, route.path, {
          token: 't',
          method: route.method,
          body: route.body,
        });
        const ms = Math.round(performance.now() - started);
        const body = (await response.json()) as { error?: { code?: string } };
        return {
          route: `${route.method} ${route.path.replace(/hung-\d+/, 'hung')}`,
          status: response.status,
          code: body.error?.code,
          retryAfter: response.headers.get('retry-after'),
          ms,
        };
      }),
    );
    for (const a of answers) {
      expect([a.status, a.code, a.retryAfter], a.route).toEqual([503, 'service_unavailable', '1']);
      expect(a.ms, a.route).toBeLessThan(USER_API_FUNCTION_TIMEOUT_MS - MARGIN_MS);
    }
    // The endpoint was reached (connections accepted and left unanswered), not refused.
    expect(hung.connections()).toBeGreaterThan(0);
    figures.userApi = {
      routes: answers.length,
      routeList: answers.map((a) => a.route),
      // By answer, each `<status> <code> retry-after <seconds>`.
      answers: answers.reduce<Record<string, number>>((tally, a) => {
        const label = `${a.status} ${a.code} retry-after ${a.retryAfter}`;
        tally[label] = (tally[label] ?? 0) + 1;
        return tally;
      }, {}),
      maxMs: Math.max(...answers.map((a) => a.ms)),
      minMs: Math.min(...answers.map((a) => a.ms)),
    };
  });

  it('auth-triggers: the sign-up trigger fails inside the 5 s Cognito waits, so Cognito can retry it', async () => {
    const { handler } = composeAuthTriggers(
      loadAuthTriggersConfig({ [ENV.accountsTable]: 'accounts', [ENV.keysTable]: 'keys' }),
      {
        aws: { region, credentials: LOCAL_CREDENTIALS, endpoints: { dynamodb: hung.endpoint } },
        logger: new Logger({ serviceName: 'client-timeouts-test', logLevel: 'SILENT' }),
      },
    );
    const sub = randomUUID();
    const event = {
      version: '1',
      region,
      userPoolId: 'pool',
      userName: sub,
      callerContext: { awsSdkVersion: '3', clientId: 'client' },
      triggerSource: 'PostConfirmation_ConfirmSignUp',
      request: { userAttributes: { sub, email: `${sub}@example.com` } },
      response: {},
    } as PostConfirmationTriggerEvent;
    const started = performance.now();
    const error = await handler(event).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = Math.round(performance.now() - started);
    expect((error as Error | undefined)?.name).toBe('DependencyError');
    expect(ms).toBeLessThan(COGNITO_TRIGGER_WAIT_MS - 1000);
    figures.authTriggers = { error: (error as Error).name, ms };
  });
});
