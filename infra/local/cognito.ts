import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { Config } from 'cognito-local/lib/server/config';
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

export async function startCognitoLocal(options: CognitoLocalOptions): Promise<CognitoLocal> {
  // aws-sdk v2 prints an end-of-support notice on load; it is cognito-local's dependency, not ours.
  (cognitoRequire('aws-sdk/lib/maintenance_mode_message') as { suppress: boolean }).suppress = true;
  const AWS = cognitoRequire('aws-sdk') as { Lambda: LambdaClientConstructor };
  const services = cognitoRequire('cognito-local/lib/services') as Services;
  const { CognitoServiceFactoryImpl } = cognitoRequire(
    'cognito-local/lib/services/cognitoService',
  ) as CognitoServiceModule;
  const { CryptoService } = cognitoRequire('cognito-local/lib/services/crypto') as CryptoModule;
  const { StormDBDataStoreFactory } = cognitoRequire(
    'cognito-local/lib/services/dataStore/stormDb',
  ) as StormDbModule;
  const { MessageDeliveryService } = cognitoRequire(
    'cognito-local/lib/services/messageDelivery/messageDelivery',
  ) as MessageDeliveryModule;
  const { otp } = cognitoRequire('cognito-local/lib/services/otp') as OtpModule;
  const { JwtTokenGenerator } = cognitoRequire(
    'cognito-local/lib/services/tokenGenerator',
  ) as TokenGeneratorModule;
  const { UserPoolServiceFactoryImpl } = cognitoRequire(
    'cognito-local/lib/services/userPoolService',
  ) as UserPoolServiceModule;
  const { Router } = cognitoRequire('cognito-local/lib/server/Router') as RouterModule;
  const { createServer } = cognitoRequire('cognito-local/lib/server/server') as ServerModule;
  const { pino } = cognitoRequire('pino') as PinoModule;

  const endpoint = `http://127.0.0.1:${options.port}`;
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const config: Config = {
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

  const logger = pino(
    { name: 'cognito-local', level: options.logLevel },
    pino.destination({ dest: 2, sync: true }),
  );
  const ctx: Context = { logger };
  const dataDirectory = resolve(options.dataDir, 'cognito');
  const clock = new services.DateClock();
  const dataStoreFactory = new StormDBDataStoreFactory(dataDirectory);
  const cognitoClient = await new CognitoServiceFactoryImpl(
    dataDirectory,
    dataStoreFactory,
    new UserPoolServiceFactoryImpl(clock, dataStoreFactory),
  ).create(ctx, config.UserPoolDefaults);
  const triggers = new services.TriggersService(
    clock,
    cognitoClient,
    new services.LambdaService(
      config.TriggerFunctions,
      new AWS.Lambda(config.LambdaClient) as ConstructorParameters<Services['LambdaService']>[1],
    ),
    new CryptoService(config.KMSConfig),
  );
  const allServices = {
    clock,
    cognito: cognitoClient,
    config,
    messages: new services.MessagesService(
      triggers,
      new MessageDeliveryService(new CapturingMessageSender(options.dataDir, options.echoMail)),
    ),
    otp,
    tokenGenerator: new JwtTokenGenerator(clock, triggers, config.TokenConfig),
    triggers,
  };

  const router = Router(allServices);
  const server: Server = (await createServer(
    (target) => (target === 'ConfirmSignUp' ? verifyThenConfirm(router(target)) : router(target)),
    logger,
    config.ServerConfig,
    allServices,
  ).start()) as Server;

  /**
   * On AWS, confirming sign-up with the emailed code also marks the email verified when the pool
   * auto-verifies email: the PostConfirmation event and every later ID token carry
   * `email_verified: true`. cognito-local only flips the status, so do the marking first.
   */
  function verifyThenConfirm(confirm: Route): Route {
    return async (routeCtx, req: { ClientId: string; Username: string; ConfirmationCode: string }) => {
      const pool = await cognitoClient.getUserPoolForClientId(routeCtx, req.ClientId);
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

  return {
    endpoint,
    close: () => closeServer(server),
  };
}
