import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { DependencyError } from './errors';

/**
 * One document client per process. Endpoints come from the SDK's own variables
 * (`AWS_ENDPOINT_URL_DYNAMODB` locally), so the same code runs against DynamoDB Local and AWS.
 */
export function createDocumentClient(config: DynamoDBClientConfig = {}): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient(config), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
]);

/** Errors that mean "DynamoDB could not answer now" rather than "the request was wrong". */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (THROTTLING.has(error.name)) return true;
  const code = (error as { code?: string }).code;
  return (
    error.name === 'TimeoutError' ||
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 503
  );
}

/** Runs one DynamoDB call; any failure becomes a DependencyError (503 at the edge, not 500). */
export async function callDynamo<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw new DependencyError('DynamoDB', { cause: error });
  }
}

/** Every item a query matches, following LastEvaluatedKey across pages. */
export async function queryAll(
  db: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey'>,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await callDynamo(() => db.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey })));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}
