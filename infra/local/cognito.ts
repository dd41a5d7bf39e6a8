import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { Config } from 'cognito-local/lib/server/config';
import type { CognitoService } from 'cognito-local/lib/services/cognitoService';
import type { Context } from 'cognito-local/lib/services/context';
import type { MessageSender } from 'cognito-local/lib/services/messageDelivery/messageSender';
import type { Message } from 'cognito-local/lib/services/messages';
import type { User } from 'cognito-local/lib/services/userPoolService';
import { closeServer } from './http-util';
import { appendCapturedMessage } from './mailbox';

/**
 * cognito-local run inside this process instead of as its CLI: the CLI reads its config from
 * `.cognito/` in the working directory, logs every request and prints codes in a box to the
 * console. Here the config is code, the data lives under the stack's data dir and codes are
 * captured to the local mailbox. The wiring mirrors cognito-local's own `createDefaultServer`.
 */

export interface CognitoLocalOptions {
  /** The stack's data dir; pools and users are kept in `<dataDir>/cognito`. */
  readonly dataDir: string;
  readonly port: number;
  /** Base URL of the server speaking the Lambda Invoke API, which runs the triggers. */
  readonly lambdaEndpoint: string;
  /** Trigger name → function name. cognito-local wires triggers for all pools, not per pool. */
  readonly triggerFunctions: Readonly<Record<string, string>>;
  /** Level of cognito-local's own pino logger (which writes to stderr). */
  readonly logLevel: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /** Print one line per captured code on stdout. */
  readonly echoMail: boolean;
}

export interface CognitoLocal {
  /** `http://127.0.0.1:<port>`, the API endpoint and the issuer domain of its tokens. */
  readonly endpoint: string;
  close(): Promise<void>;
}

// cognito-local is CommonJS without an exports map; its own dependencies (aws-sdk v2, pino) are
// resolved from its location so we get exactly the versions it was built against.
const require = createRequire(import.meta.url);
const cognitoRequire = createRequire(require.resolve('cognito-local/package.json'));

type Services = typeof import('cognito-local/lib/services');
type CognitoServiceModule = typeof import('cognito-local/lib/services/cognitoService');
type CryptoModule = typeof import('cognito-local/lib/services/crypto');
type StormDbModule = typeof import('cognito-local/lib/services/dataStore/stormDb');
type MessageDeliveryModule = typeof import('cognito-local/lib/services/messageDelivery/messageDelivery');
type OtpModule = typeof import('cognito-local/lib/services/otp');
type TokenGeneratorModule = typeof import('cognito-local/lib/services/tokenGenerator');
type UserPoolServiceModule = typeof import('cognito-local/lib/services/userPoolService');
type RouterModule = typeof import('cognito-local/lib/server/Router');
type Route = import('cognito-local/lib/server/Router').Route;
type ServerModule = typeof import('cognito-local/lib/server/server');
type PinoModule = typeof import('pino');

interface LambdaClientConstructor {
  new (config: Config['LambdaClient']): unknown;
}

/** Writes each code to the local mailbox instead of sending mail or SMS. */
class CapturingMessageSender implements MessageSender {
  constructor(
    private readonly dataDir: string,
    private readonly echo: boolean,
  ) {}

  sendEmail(ctx: Context, user: User, destination: string, message: Message): Promise<void> {
    return this.capture(ctx, user, destination, message);
  }

  sendSms(ctx: Context, user: User, destination: string, message: Message): Promise<void> {
    return this.capture(ctx, user, destination, message);
  }

  private async capture(_ctx: Context, user: User, destination: string, message: Message): Promise<void> {
    const code = message.__code ?? '';
    await appendCapturedMessage(this.dataDir, {
      at: new Date().toISOString(),
      username: user.Username,
      destination,
      code,
      subject: message.emailSubject,
      message: message.emailMessage ?? message.smsMessage,
    });
    if (this.echo) process.stdout.write(`[mail] code ${code} for ${destination}\n`);
  }
}

/** cognito-local's modules, loaded from its own location. */
function loadCognitoLocal() {
  // aws-sdk v2 prints an end-of-support notice on load; it is cognito-local's dependency, not ours.
  (cognitoRequire('aws-sdk/lib/maintenance_mode_message') as { suppress: boolean }).suppress = true;
  const load = <M>(id: string) => cognitoRequire(id) as M;
  return {
    AWS: load<{ Lambda: LambdaClientConstructor }>('aws-sdk'),
    services: load<Services>('cognito-local/lib/services'),
    CognitoServiceFactoryImpl: load<CognitoServiceModule>('cognito-local/lib/services/cognitoService')
      .CognitoServiceFactoryImpl,
    CryptoService: load<CryptoModule>('cognito-local/lib/services/crypto').CryptoService,
    StormDBDataStoreFactory: load<StormDbModule>('cognito-local/lib/services/dataStore/stormDb')
      .StormDBDataStoreFactory,
    MessageDeliveryService: load<MessageDeliveryModule>(
      'cognito-local/lib/services/messageDelivery/messageDelivery',
    ).MessageDeliveryService,
    otp: load<OtpModule>('cognito-local/lib/services/otp').otp,
    JwtTokenGenerator: load<TokenGeneratorModule>('cognito-local/lib/services/tokenGenerator')
      .JwtTokenGenerator,
    UserPoolServiceFactoryImpl: load<UserPoolServiceModule>('cognito-local/lib/services/userPoolService')
      .UserPoolServiceFactoryImpl,
    Router: load<RouterModule>('cognito-local/lib/server/Router').Router,
    createServer: load<ServerModule>('cognito-local/lib/server/server').createServer,
    pino: load<PinoModule>('pino').pino,
  };
}

type CognitoLocalModules = ReturnType<typeof loadCognitoLocal>;

function cognitoConfig(options: CognitoLocalOptions, endpoint: string): Config {
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  return {
    LambdaClient: {
      endpoint: options.lambdaEndpoint,
      region: 'us-east-1',
      credentials,
      // A trigger runs once per event, as Cognito's own invocation does; a retried network error
      // would run PostConfirmation twice. The timeout is above Cognito's 5 s so that the first,
      // still cold DynamoDB Local call does not fail a local sign-up.
      maxRetries: 0,
      httpOptions: { timeout: 10_000 },
    },
    TriggerFunctions: options.triggerFunctions,
    UserPoolDefaults: { UsernameAttributes: ['email'] },
    KMSConfig: { credentials, region: 'us-east-1' },
    ServerConfig: { port: options.port, hostname: '127.0.0.1', development: false, https: false },
    // Tokens carry `iss: <IssuerDomain>/<poolId>`; the user-api checks it against TOLLGATE_JWT_ISSUER.
    TokenConfig: { IssuerDomain: endpoint },
  };
}

/** The services cognito-local's router dispatches to, as its `createDefaultServer` builds them. */
async function createServices(
  modules: CognitoLocalModules,
  options: CognitoLocalOptions,
  config: Config,
  ctx: Context,
) {
  const { services } = modules;
  const dataDirectory = resolve(options.dataDir, 'cognito');
  const clock = new services.DateClock();
  const dataStoreFactory = new modules.StormDBDataStoreFactory(dataDirectory);
  const cognito = await new modules.CognitoServiceFactoryImpl(
    dataDirectory,
    dataStoreFactory,
    new modules.UserPoolServiceFactoryImpl(clock, dataStoreFactory),
  ).create(ctx, config.UserPoolDefaults);
  const triggers = new services.TriggersService(
    clock,
    cognito,
    new services.LambdaService(
      config.TriggerFunctions,
      new modules.AWS.Lambda(config.LambdaClient) as ConstructorParameters<Services['LambdaService']>[1],
    ),
    new modules.CryptoService(config.KMSConfig),
  );
  return {
    clock,
    cognito,
    config,
    messages: new services.MessagesService(
      triggers,
      new modules.MessageDeliveryService(new CapturingMessageSender(options.dataDir, options.echoMail)),
    ),
    otp: modules.otp,
    tokenGenerator: new modules.JwtTokenGenerator(clock, triggers, config.TokenConfig),
    triggers,
  };
}

export async function startCognitoLocal(options: CognitoLocalOptions): Promise<CognitoLocal> {
  const modules = loadCognitoLocal();
  const endpoint = `http://127.0.0.1:${options.port}`;
  const config = cognitoConfig(options, endpoint);
  const logger = modules.pino(
    { name: 'cognito-local', level: options.logLevel },
    modules.pino.destination({ dest: 2, sync: true }),
  );
  const allServices = await createServices(modules, options, config, { logger });
  const router = modules.Router(allServices);
  const server: Server = (await modules
    .createServer(
      (target) =>
        target === 'ConfirmSignUp' ? verifyThenConfirm(allServices.cognito, router(target)) : router(target),
      logger,
      config.ServerConfig,
      allServices,
    )
    .start()) as Server;
  return {
    endpoint,
    close: () => closeServer(server),
  };
}

/**
 * On AWS, confirming sign-up with the emailed code also marks the email verified when the pool
 * auto-verifies email: the PostConfirmation event and every later ID token carry
 * `email_verified: true`. cognito-local only flips the status, so do the marking first.
 */
function verifyThenConfirm(cognito: CognitoService, confirm: Route): Route {
  return async (routeCtx, req: { ClientId: string; Username: string; ConfirmationCode: string }) => {
    const pool = await cognito.getUserPoolForClientId(routeCtx, req.ClientId);
    const user = await pool.getUserByUsername(routeCtx, req.Username);
    const autoVerified = pool.options.AutoVerifiedAttributes ?? [];
    if (
      user?.ConfirmationCode &&
      user.ConfirmationCode === req.ConfirmationCode &&
      autoVerified.includes('email')
    ) {
      const attributes = (user.Attributes ?? []).filter((a) => a.Name !== 'email_verified');
      await pool.saveUser(routeCtx, {
        ...user,
        Attributes: [...attributes, { Name: 'email_verified', Value: 'true' }],
      });
    }
    return confirm(routeCtx, req);
  };
}
