import { type UsageRedelivery, usageRedelivery } from '../../contracts/redelivery';
import type { TableDefinition } from '../../contracts/resources';
import {
  type AwsOptions,
  dynamoDbClient,
  kinesisClient,
  sqsClient,
} from '../../services/platform/aws-clients';
import { localCognitoClient } from './local-aws';
import { backfillAccountDirectory } from './resources/account-directory';
import { ensureAdmin, type LocalAdmin } from './resources/admin';
import { ensureUsageQueues } from './resources/queues';
import { ensureUsageStream } from './resources/stream';
import { ensureTables } from './resources/tables';
import { ensureUserPool } from './resources/user-pool';

export { ADMIN_FILE, LOCAL_ADMIN_EMAIL, type LocalAdmin } from './resources/admin';

/**
 * Turns contracts/resources.ts into resources on the emulators, one module per kind under
 * resources/: the tables, the usage queues, the usage stream, the user pool, and the seed data (the
 * local admin). Every step looks first and creates only what is missing, because DynamoDB, Kinesis
 * and Cognito data persist across restarts.
 */

export interface BootstrapOptions {
  /** Part of every resource name. */
  readonly stage: string;
  /** Where DynamoDB, SQS and Kinesis are (the options of services/platform/aws-clients.ts). */
  readonly aws: AwsOptions;
  readonly cognitoEndpoint: string;
  /** The stack's data dir: `admin.json` is kept there, and messages name it. */
  readonly dataDir: string;
  /** How long usage waits and is kept: the CDK stack's settings for the same late window. */
  readonly redelivery?: UsageRedelivery;
}

export interface BootstrapResult {
  readonly tables: Readonly<Record<TableDefinition['id'], string>>;
  readonly usageQueueUrl: string;
  /** For event source records (`eventSourceARN`). */
  readonly usageQueueArn: string;
  readonly usageDlqUrl: string;
  readonly usageStreamName: string;
  readonly usageStreamArn: string;
  readonly userPoolId: string;
  readonly userPoolClientId: string;
  /** The local admin's sign-in (a confirmed user in the group `admins`), also in `<dataDir>/admin.json`. */
  readonly admin: LocalAdmin;
}

export async function bootstrap(options: BootstrapOptions): Promise<BootstrapResult> {
  const { stage, aws, dataDir, redelivery = usageRedelivery() } = options;
  const dynamodb = dynamoDbClient(aws);
  const sqs = sqsClient(aws);
  const kinesis = kinesisClient(aws);
  const cognito = localCognitoClient(options.cognitoEndpoint);
  try {
    const [tableNames, queues, stream, pool] = await Promise.all([
      ensureTables(dynamodb, stage, dataDir),
      ensureUsageQueues(sqs, stage, redelivery),
      ensureUsageStream(kinesis, stage, redelivery.stream.retentionHours),
      ensureUserPool(cognito, stage).then(async (pool) => ({
        ...pool,
        admin: await ensureAdmin(cognito, pool.userPoolId, dataDir),
      })),
    ]);
    // Accounts made before the admin's account index existed are put into it (local data persists).
    await backfillAccountDirectory(dynamodb, tableNames.accounts);
    return { tables: tableNames, ...queues, ...stream, ...pool };
  } finally {
    for (const client of [dynamodb, sqs, kinesis, cognito]) client.destroy();
  }
}
