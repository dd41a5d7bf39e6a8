import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GetQueueUrlCommand, QueueDoesNotExist, type SQSClient } from '@aws-sdk/client-sqs';
import { queueName, tableName, usageQueue, usageTable } from '../../contracts/resources';
import { KinesisLookBack } from '../../services/metering/look-back';
import { type RedriveReport, redriveUsage } from '../../services/metering/redrive';
import {
  type AwsOptions,
  documentClient,
  kinesisClient,
  sqsClient,
} from '../../services/platform/aws-clients';
import { UsageStore } from '../../services/usage/usage-store';

/**
 * `npm run usage:redrive`: sends the usage dead-letter queue back to metering after a long outage
 * (services/metering/redrive.ts says what happens to each kind of dead letter; docs/metering.md has
 * the runbook).
 *
 *   npm run usage:redrive                       # the local stack (.local/endpoints.json)
 *   npm run usage:redrive -- --dry-run          # report only
 *   npm run usage:redrive -- --aws --stage prod # AWS, with the credentials of the stack's redrive
 *                                               # role (output UsageRedriveRoleArn), e.g. a profile
 *                                               # with role_arn: AWS_PROFILE=tollgate-redrive
 */

const USAGE = `usage: npm run usage:redrive -- [--aws] [--stage <stage>] [--region <region>]
                            [--data-dir <dir>] [--dry-run] [--max <messages>]`;

export interface RedriveTarget {
  readonly aws: AwsOptions;
  readonly deadLetterQueueUrl: string;
  readonly targetQueueUrl: string;
  readonly usageTable: string;
}

/**
 * Where the stage's queues are. The target is the queue metering counts with marks: a Kinesis
 * stack's redrive queue when there is one, else the usage queue (SQS stacks and the local stack,
 * whose one consumer reads both transports).
 */
export async function resolveRedriveTarget(stage: string, aws: AwsOptions): Promise<RedriveTarget> {
  const sqs = sqsClient(aws);
  try {
    const urlOf = async (name: string) =>
      (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
    const deadLetterQueueUrl = await urlOf(queueName(stage, usageQueue, true));
    const redrive = await optionalQueue(sqs, `${queueName(stage, usageQueue)}-redrive`);
    const targetQueueUrl = redrive ?? (await urlOf(queueName(stage, usageQueue)));
    return { aws, deadLetterQueueUrl, targetQueueUrl, usageTable: tableName(stage, usageTable) };
  } finally {
    sqs.destroy();
  }
}

async function optionalQueue(sqs: SQSClient, name: string): Promise<string | undefined> {
  try {
    return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
  } catch (error) {
    if (error instanceof QueueDoesNotExist || (error as Error)?.name?.includes('NonExistentQueue'))
      return undefined;
    throw error;
  }
}

/** Runs the redrive against a resolved target with clients of its own. */
export async function runRedrive(
  target: RedriveTarget,
  options: { dryRun?: boolean; maxMessages?: number } = {},
): Promise<RedriveReport> {
  const sqs = sqsClient(target.aws);
  const kinesis = kinesisClient(target.aws);
  const dynamo = documentClient(target.aws);
  try {
    return await redriveUsage({
      sqs,
      kinesis,
      deadLetterQueueUrl: target.deadLetterQueueUrl,
      targetQueueUrl: target.targetQueueUrl,
      watermarks: new UsageStore({ client: dynamo, table: target.usageTable }),
      lookBack: new KinesisLookBack({ kinesis }),
      ...(options.dryRun ? { dryRun: true } : {}),
      ...(options.maxMessages ? { maxMessages: options.maxMessages } : {}),
    });
  } finally {
    sqs.destroy();
    kinesis.destroy();
    dynamo.destroy();
  }
}

/** The local stack's engines, from its endpoints.json (written by npm start). */
async function localAws(dataDir: string): Promise<AwsOptions> {
  const file = join(dataDir, 'endpoints.json');
  let endpoints: { region: string; dynamodb: string; sqs: string; kinesis: string };
  try {
    endpoints = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    throw new Error(`no local stack found: ${file} is missing (is npm start running?)`);
  }
  return {
    region: endpoints.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    endpoints: { dynamodb: endpoints.dynamodb, sqs: endpoints.sqs, kinesis: endpoints.kinesis },
  };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      aws: { type: 'boolean', default: false },
      stage: { type: 'string' },
      region: { type: 'string' },
      'data-dir': { type: 'string', default: '.local' },
      'dry-run': { type: 'boolean', default: false },
      max: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const stage = values.stage ?? (values.aws ? 'prod' : 'local');
  // On AWS the SDK's own chain supplies the credentials (the redrive role's profile or session).
  const aws: AwsOptions = values.aws
    ? { ...(values.region ? { region: values.region } : {}) }
    : await localAws(values['data-dir']);
  const target = await resolveRedriveTarget(stage, aws);
  const report = await runRedrive(target, {
    dryRun: values['dry-run'],
    ...(values.max ? { maxMessages: Number(values.max) } : {}),
  });
  console.log(
    JSON.stringify({ stage, dryRun: values['dry-run'], ...target, aws: undefined, report }, null, 2),
  );
  if (report.failed.length > 0) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`usage:redrive failed: ${(error as Error)?.message ?? error}`);
    process.exitCode = 1;
  });
}
