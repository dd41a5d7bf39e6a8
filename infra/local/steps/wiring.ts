import { Logger } from '@aws-lambda-powertools/logger';
import { ENV } from '../../../contracts/config';
import { DEFAULT_TRANSPORT, type Transport } from '../../../contracts/transport';
import type { AwsOptions } from '../../../services/platform/aws-clients';
import { WEB_DEV_PORT } from '../../../web/server/local-site';
import type { BootstrapResult } from '../bootstrap';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localAws } from '../local-aws';
import type { LocalPorts } from '../ports';

/** The page on its default port, and the Vite dev server of `npm run web:dev`. */
export const DEFAULT_ALLOWED_ORIGINS = [
  'http://localhost:5173',
  'http://127.0.0.1:5173',
  `http://localhost:${WEB_DEV_PORT}`,
  `http://127.0.0.1:${WEB_DEV_PORT}`,
];

/** Where the engines answer, once started. */
export interface EngineEndpoints {
  readonly dynamodb: string;
  readonly sqs: string;
  readonly kinesis: string;
  readonly cognito: string;
  readonly lambda: string;
}

/** What every deployable of the stack is composed from, as a Lambda handler file would be. */
export interface Wiring {
  /** The handlers' settings, by the names of contracts/config.ts. */
  readonly env: Readonly<Record<string, string>>;
  /** Where the handlers' SDK clients reach the engines. */
  readonly aws: AwsOptions;
  /** The same for a child process: the AWS SDK's own variables. */
  readonly awsEnv: Readonly<Record<string, string>>;
  /** A Powertools logger for the service (JSON lines on stdout; there is no CloudWatch here). */
  logger(serviceName: string): Logger;
}

export interface WiringOptions {
  readonly ports: LocalPorts;
  readonly engines: EngineEndpoints;
  readonly resources: BootstrapResult;
  readonly transport?: Transport;
  readonly allowedOrigins?: readonly string[];
  /** They override the stack's own settings. */
  readonly settings?: Readonly<Record<string, string>>;
  readonly logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

export function wireHandlers(options: WiringOptions): Wiring {
  const { engines, logLevel } = options;
  return {
    env: handlerSettings(options),
    aws: localAws({ dynamodb: engines.dynamodb, sqs: engines.sqs, kinesis: engines.kinesis }),
    awsEnv: {
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: engines.dynamodb,
      AWS_ENDPOINT_URL_SQS: engines.sqs,
      AWS_ENDPOINT_URL_KINESIS: engines.kinesis,
      AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: engines.cognito,
      AWS_ENDPOINT_URL_LAMBDA: engines.lambda,
    },
    logger: (serviceName) => new Logger({ serviceName, logLevel }),
  };
}

function handlerSettings(options: WiringOptions): Record<string, string> {
  const { resources } = options;
  const issuer = `${options.engines.cognito}/${resources.userPoolId}`;
  return {
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
    [ENV.allowedOrigins]: allowedOrigins(options.allowedOrigins, options.ports).join(','),
    ...options.settings,
  };
}

/** The configured (or default) origins, plus the stack's own page on whichever port it is. */
function allowedOrigins(configured: readonly string[] | undefined, ports: LocalPorts): string[] {
  const ownPage = [`http://localhost:${ports.web}`, `http://127.0.0.1:${ports.web}`];
  return [...new Set([...(configured ?? DEFAULT_ALLOWED_ORIGINS), ...ownPage])];
}
