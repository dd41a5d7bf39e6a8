import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Endpoints } from '../../infra/local/stack';

// Nothing in test/support imports vitest except local-stack.ts and metering-consumer.ts:
// `npm run soak` runs the rest outside the test runner.

/** The local engines accept any credentials; these are the ones the local stack uses. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** The client settings a service may tune: its request handler's timeouts and its attempts. */
export interface ClientTuning {
  requestHandler?: { connectionTimeout?: number; requestTimeout?: number; throwOnRequestTimeout?: boolean };
  maxAttempts?: number;
}

/** A document client over a client the caller owns (and may have put faults or counters on). */
export function documentClient(dynamo: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
}

/**
 * Fresh SDK clients on the local engines: one set per simulated process (container), each its own
 * so a test can inject faults into or count the requests of one without touching the others.
 * `config` is what a service builds its clients with (e.g. key-api's timeouts and attempts).
 */
export function engineClients(endpoints: Endpoints, config: ClientTuning = {}) {
  const base = { region: endpoints.region, credentials: LOCAL_CREDENTIALS, ...config };
  const dynamo = new DynamoDBClient({ ...base, endpoint: endpoints.dynamodb });
  return {
    dynamo,
    doc: documentClient(dynamo),
    sqs: new SQSClient({ ...base, endpoint: endpoints.sqs }),
    kinesis: new KinesisClient({ ...base, endpoint: endpoints.kinesis }),
  };
}

export type EngineClients = ReturnType<typeof engineClients>;

type AnyClient = DynamoDBClient | SQSClient | KinesisClient;

// The clients' stacks differ only in their input and output types, which these middlewares ignore.
const stackOf = (client: AnyClient) => client.middlewareStack as DynamoDBClient['middlewareStack'];

/**
 * Counts the requests a client really sends, by command name: counted at the client, so what a
 * test asserts is what DynamoDB would bill, not what the code intended.
 */
export function countRequests(client: AnyClient): Map<string, number> {
  const counts = new Map<string, number>();
  stackOf(client).add(
    (next, context) => async (args) => {
      counts.set(context.commandName ?? '?', (counts.get(context.commandName ?? '?') ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  return counts;
}

/**
 * Injects faults in front of a real client: `decide` sees each command and may return an error to
 * throw instead of sending it (before the SDK's own retries, as if they were all used up).
 */
export function injectFaults(
  client: AnyClient,
  decide: (commandName: string, input: unknown) => Error | undefined,
): void {
  stackOf(client).add(
    (next, context) => async (args) => {
      const fault = decide(context.commandName ?? '?', args.input);
      if (fault) throw fault;
      return next(args);
    },
    { step: 'initialize', name: 'injectFaults' },
  );
}

/**
 * Runs `around` for every command a real client sends: it may throw instead of sending (a fault),
 * or act once the answer came back (e.g. "die right after this write committed"); `input` is the
 * command's, for telling which item a write is for.
 */
export function aroundRequests(
  client: AnyClient,
  around: (commandName: string, send: () => Promise<unknown>, input: unknown) => Promise<unknown>,
): void {
  stackOf(client).add(
    (next, context) => async (args) =>
      (await around(context.commandName ?? '?', () => next(args), args.input)) as Awaited<
        ReturnType<typeof next>
      >,
    { step: 'initialize', name: `around-${Math.random()}` },
  );
}

/** An AWS-style error as the SDK would raise it. */
export function awsError(name: string, message = name): Error {
  const error = new Error(message);
  error.name = name;
  return Object.assign(error, { $metadata: { httpStatusCode: 400 }, $fault: 'client' });
}
