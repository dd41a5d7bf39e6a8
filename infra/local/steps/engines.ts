import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { createRequestHandler as createSqsRequestHandler } from 'local-aws-sqs';
import { kinesisClient, sqsClient } from '../../../services/platform/aws-clients';
import { startCognitoLocal } from '../cognito';
import { closeServer, listen } from '../http-util';
import { createKinesisServer } from '../kinesis';
import { type InvokeHandler, startLambdaInvokeServer } from '../lambda-invoke';
import {
  AUTH_TRIGGERS_FUNCTION,
  LOCAL_ACCOUNT_ID,
  LOCAL_REGION,
  localAws,
  localUrl,
  withClient,
} from '../local-aws';
import { waitForAnswer } from '../poll';
import { listenAs } from '../ports';
import { type Engine, inParts, type StackContext, type Stoppable } from './step';

/** The SQS emulator (in memory: the queues are created again on every start). */
export async function startSqs(context: StackContext): Promise<Engine> {
  const { ports } = context;
  const server = createServer(
    createSqsRequestHandler({
      port: ports.sqs,
      hostname: '127.0.0.1',
      region: LOCAL_REGION,
      accountId: LOCAL_ACCOUNT_ID,
    }).requestHandler,
  );
  await listenAs(ports, 'sqs', () => listen(server, ports.sqs));
  const endpoint = localUrl(ports.sqs);
  return {
    endpoint,
    ready: () =>
      waitForAnswer('SQS', () =>
        withClient(sqsClient(localAws({ sqs: endpoint })), (client) =>
          client.send(new ListQueuesCommand({})),
        ),
      ),
    stop: () => closeServer(server),
  };
}

/** kinesalite, its streams in `<dataDir>/kinesis`. */
export function startKinesis(context: StackContext): Promise<Engine> {
  const { ports, dataDir } = context;
  return inParts(async (parts) => {
    await mkdir(join(dataDir, 'kinesis'), { recursive: true });
    const kinesis = createKinesisServer({ port: ports.kinesis, path: join(dataDir, 'kinesis') });
    // Stopped even if listening fails: kinesalite has already opened its LevelDB, which must be closed.
    parts.add('Kinesis', { stop: () => kinesis.close() });
    await listenAs(ports, 'kinesis', () => listen(kinesis.server, ports.kinesis));
    const endpoint = localUrl(ports.kinesis);
    return {
      endpoint,
      ready: () =>
        waitForAnswer('Kinesis', () =>
          withClient(kinesisClient(localAws({ kinesis: endpoint })), (client) =>
            client.send(new ListStreamsCommand({})),
          ),
        ),
    };
  });
}

export interface LambdaInvoke extends Stoppable {
  readonly endpoint: string;
  /** Makes a function invocable by name (cognito-local invokes the triggers by name). */
  register(name: string, handler: InvokeHandler): void;
}

/** The Lambda Invoke API, for cognito-local's triggers; functions are registered once composed. */
export async function startLambdaInvoke(context: StackContext): Promise<LambdaInvoke> {
  const { ports, notice } = context;
  const functions: Record<string, InvokeHandler> = {};
  const server = await listenAs(ports, 'lambda', () =>
    startLambdaInvokeServer({
      port: ports.lambda,
      functions,
      onFunctionError: (name, error) =>
        notice(`[lambda] ${name} failed: ${(error as Error)?.message ?? error}`),
    }),
  );
  return {
    endpoint: server.endpoint,
    register: (name, handler) => {
      functions[name] = handler;
    },
    stop: () => server.close(),
  };
}

/** cognito-local, its pools in `<dataDir>/cognito`, running its PostConfirmation trigger through `lambda`. */
export async function startCognito(context: StackContext, lambda: LambdaInvoke): Promise<Engine> {
  const { ports, quiet, dataDir } = context;
  const cognito = await listenAs(ports, 'cognito', () =>
    startCognitoLocal({
      dataDir,
      port: ports.cognito,
      lambdaEndpoint: lambda.endpoint,
      triggerFunctions: { PostConfirmation: AUTH_TRIGGERS_FUNCTION },
      logLevel: quiet ? 'error' : 'warn',
      echoMail: !quiet,
    }),
  );
  return {
    endpoint: cognito.endpoint,
    ready: () =>
      waitForAnswer('Cognito', async () => {
        const response = await fetch(`${cognito.endpoint}/health`);
        if (!response.ok) throw new Error(`health check answered ${response.status}`);
      }),
    stop: () => cognito.close(),
  };
}
