import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { KinesisClient, type KinesisClientConfig } from '@aws-sdk/client-kinesis';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Where a deployable's AWS clients point. On Lambda nothing is given: region and credentials come
 * from the function's environment, as the SDK reads them itself. The local stack, tests and bench
 * pass their emulators' endpoints here, so two stacks in one process each reach their own engines.
 */
export interface AwsOptions {
  readonly region?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly endpoints?: { readonly dynamodb?: string; readonly sqs?: string; readonly kinesis?: string };
}

function common(options: AwsOptions, endpoint: string | undefined) {
  return {
    ...(options.region ? { region: options.region } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(endpoint ? { endpoint } : {}),
  };
}

/** A document client that drops undefined attributes (optional fields of our records). */
export function documentClient(options: AwsOptions = {}, config: DynamoDBClientConfig = {}) {
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({ ...config, ...common(options, options.endpoints?.dynamodb) }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
}

export function sqsClient(options: AwsOptions = {}, config: SQSClientConfig = {}): SQSClient {
  return new SQSClient({ ...config, ...common(options, options.endpoints?.sqs) });
}

export function kinesisClient(options: AwsOptions = {}, config: KinesisClientConfig = {}): KinesisClient {
  return new KinesisClient({ ...config, ...common(options, options.endpoints?.kinesis) });
}
