import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { endpoints } from './helpers';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Real SDK clients pointed at the local stack's engines. */
export function localClients() {
  const e = endpoints();
  const dynamo = new DynamoDBClient({ region: e.region, endpoint: e.dynamodb, credentials });
  return {
    dynamo,
    doc: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
    sqs: new SQSClient({ region: e.region, endpoint: e.sqs, credentials }),
    kinesis: new KinesisClient({ region: e.region, endpoint: e.kinesis, credentials }),
  };
}

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

/** An AWS-style error as the SDK would raise it. */
export function awsError(name: string, message = name): Error {
  const error = new Error(message);
  error.name = name;
  return Object.assign(error, { $metadata: { httpStatusCode: 400 }, $fault: 'client' });
}
