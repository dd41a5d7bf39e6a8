import { createServer, type Server } from 'node:http';
import { getRequestListener, RequestError, type serve } from '@hono/node-server';
import { ENV } from '../../../contracts/config';
import { errorBody } from '../../../contracts/errors';
import { SERVICE_NAMES } from '../../../contracts/metric-names';
import { userPool } from '../../../contracts/resources';
import { composeRatesApi } from '../../../examples/rates-api/compose';
import { composeAuthTriggers } from '../../../services/auth-triggers/compose';
import { loadAuthTriggersConfig } from '../../../services/auth-triggers/config';
import { fixedSecrets } from '../../../services/billing/secrets';
import { loadGateConfig } from '../../../services/gate/config';
import { composeKeyApi } from '../../../services/key-api/compose';
import { loadKeyApiConfig } from '../../../services/key-api/config';
import { composeUserApi } from '../../../services/user-api/compose';
import { loadUserApiConfig } from '../../../services/user-api/config';
import { createLocalSiteApp } from '../../../web/server/local-site';
import { type AlbHandler, startAlbAdapter } from '../alb-adapter';
import type { BootstrapResult } from '../bootstrap';
import { closeServer } from '../http-util';
import type { InvokeHandler } from '../lambda-invoke';
import { AUTH_TRIGGERS_FUNCTION, LOCAL_ACCOUNT_ID, LOCAL_REGION, localUrl } from '../local-aws';
import { recordedAlbTarget } from '../ops/invocations';
import { listenAs, type PortName } from '../ports';
import type { LambdaInvoke } from './engines';
import type { StackContext, Stoppable } from './step';
import type { Wiring } from './wiring';

/**
 * The deployables behind their local stand-ins: the same compose functions as the Lambda handler
 * files, over this stack's engines. There is no CloudWatch here: metrics go to the stack's
 * metric store (context.metrics), which the ops page reads.
 */

/** A server of the stack that answers HTTP. */
export interface Served extends Stoppable {
  readonly endpoint: string;
}

/** The PostConfirmation trigger, which cognito-local invokes through the Lambda Invoke server. */
export function registerAuthTriggers(lambda: LambdaInvoke, wiring: Wiring): void {
  const triggers = composeAuthTriggers(loadAuthTriggersConfig(wiring.env), {
    aws: wiring.aws,
    logger: wiring.logger(SERVICE_NAMES.authTriggers),
  });
  lambda.register(AUTH_TRIGGERS_FUNCTION, triggers.handler as InvokeHandler);
}

/** key-api's Lambda handler behind an ALB stand-in, as on AWS. */
export function startKeyApi(context: StackContext, wiring: Wiring): Promise<Served> {
  const { handler } = composeKeyApi(loadKeyApiConfig(wiring.env), {
    aws: wiring.aws,
    logger: wiring.logger(SERVICE_NAMES.keyApi),
    metrics: context.metrics.forService(SERVICE_NAMES.keyApi),
  });
  return behindAlb(context, 'keyApi', 'key-api', recordedAlbTarget(context.metrics, 'keyApi', handler));
}

/**
 * The example owner API: its Lambda handler (Hono's ALB adapter) behind an ALB stand-in of its
 * own; on AWS the same ALB forwards /v1/* and /openapi.json to it (listener rules).
 */
export function startExampleApi(context: StackContext, wiring: Wiring): Promise<Served> {
  const { handler } = composeRatesApi(loadGateConfig(wiring.env, SERVICE_NAMES.exampleApi), {
    aws: wiring.aws,
    logger: wiring.logger(SERVICE_NAMES.exampleApi),
    metrics: context.metrics.forService(SERVICE_NAMES.exampleApi),
  });
  return behindAlb(
    context,
    'exampleApi',
    'example-api',
    recordedAlbTarget(context.metrics, 'ownerApi', handler),
  );
}

async function behindAlb(
  context: StackContext,
  port: PortName,
  name: string,
  handler: AlbHandler,
): Promise<Served> {
  const { ports, stage } = context;
  const alb = await listenAs(ports, port, () =>
    startAlbAdapter({
      port: ports[port],
      handler,
      targetGroupArn: `arn:aws:elasticloadbalancing:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:targetgroup/tollgate-${stage}-${name}/0000000000000000`,
      onHandlerError: (error) =>
        process.stderr.write(
          `[${name}] handler failed (answered 502): ${(error as Error)?.stack ?? error}\n`,
        ),
    }),
  );
  return { endpoint: alb.endpoint, stop: () => alb.close() };
}

/**
 * The user API's Hono app, served directly (API Gateway's HTTP API on AWS); its billing routes
 * reach the Stripe stand-in with its key, handed in as Secrets Manager would hand it.
 */
export function startUserApi(
  context: StackContext,
  wiring: Wiring,
  stripeSecretKey: string,
): Promise<Served> {
  const app = composeUserApi(loadUserApiConfig(wiring.env), {
    aws: wiring.aws,
    billingSecrets: fixedSecrets({ stripeSecretKey }),
    logger: wiring.logger(SERVICE_NAMES.userApi),
    metrics: context.metrics.forService(SERVICE_NAMES.userApi),
  });
  return serveHono(context, 'userApi', app.fetch);
}

export interface WebPageOptions {
  readonly resources: BootstrapResult;
  readonly cognitoEndpoint: string;
  readonly userApi: string;
  readonly keyApi: string;
  /** The handlers' settings (Wiring.env): the page states the windows they configure. */
  readonly env: Wiring['env'];
  /** The built web page to serve; web/dist unless given. */
  readonly webRoot?: string;
}

/** The page and its /config.json, as S3 + CloudFront serve them on AWS. */
export function startWebPage(context: StackContext, options: WebPageOptions): Promise<Served> {
  const { resources } = options;
  const app = createLocalSiteApp({
    ...(options.webRoot ? { root: options.webRoot } : {}),
    config: {
      region: LOCAL_REGION,
      cognito: {
        userPoolId: resources.userPoolId,
        clientId: resources.userPoolClientId,
        endpoint: options.cognitoEndpoint,
        passwordPolicy: { ...userPool.passwordPolicy },
      },
      userApi: options.userApi,
      keyApi: options.keyApi,
      windows: {
        keyCacheFreshMs: loadKeyApiConfig(options.env)[ENV.keyCacheFreshMs],
        rollGraceMs: loadUserApiConfig(options.env)[ENV.rollGraceMs],
      },
    },
  });
  return serveHono(context, 'web', app.fetch);
}

export async function serveHono(
  context: StackContext,
  port: PortName,
  fetch: Parameters<typeof serve>[0]['fetch'],
): Promise<Served> {
  const { ports } = context;
  const server = await listenAs(ports, port, () => listenHono(fetch, ports[port]));
  return { endpoint: localUrl(ports[port]), stop: () => closeServer(server) };
}

/**
 * Node's server for a Hono app, as `serve` makes it, with one difference: a request Node parses but
 * no URL can be made of (a backslash in the path, say) gets the JSON error shape every other 400 has,
 * where `serve` would answer an empty 400 (its listener takes an errorHandler; `serve` passes none).
 */
function listenHono(fetch: Parameters<typeof serve>[0]['fetch'], port: number): Promise<Server> {
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    });
  const listener = getRequestListener(fetch, {
    hostname: '127.0.0.1',
    errorHandler: (error) =>
      error instanceof RequestError
        ? json(400, errorBody('invalid_request', 'The request target is not a valid path'))
        : json(500, errorBody('internal_error', 'Something went wrong on our side')),
  });
  return new Promise((resolveServer, reject) => {
    const server = createServer(listener);
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolveServer(server);
    });
  });
}
