import { createHash } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENV } from '../../contracts/config';
import { usageQueue, usageStream } from '../../contracts/resources';
import { utcDay } from '../../contracts/usage-event';
import { documentClient } from '../../services/platform/aws-clients';
import { UsageReader } from '../../services/usage/usage-reader';
import { sleep } from '../lib/bench-context';
import { UsageLedger } from '../lib/exact';
import type { Child } from '../lib/ipc';
import type { ProcessTree } from '../lib/process-tree';
import { CHILD_ENV, SCRIPTS } from '../lib/set-up';
import type { StackInfo, Transport } from '../lib/types';
import type { Layout, LayoutSettings } from './profiles';

/** What every part of the layout bench runs against: the stack, the orchestrator's clients, the producer. */
export interface LayoutContext {
  readonly settings: LayoutSettings;
  readonly log: (line: string) => void;
  /** This run's id: in the names of its queues, streams and made-up ids. */
  readonly run: string;
  readonly stack: StackInfo;
  readonly processes: ProcessTree;
  readonly usageTable: string;
  readonly keysTable: string;
  readonly accountsTable: string;
  /** The orchestrator's own clients: no part's figures include their requests. */
  readonly dynamo: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly kinesis: KinesisClient;
  readonly ledger: UsageLedger;
  readonly producer: Child<unknown>;
}

function required(stack: StackInfo, name: string): string {
  const value = stack.env[name];
  if (!value) throw new Error(`the stack gave no ${name}`);
  return value;
}

/** The orchestrator's clients on a running stack, and the producer process. */
export async function layoutContext(
  stack: StackInfo,
  settings: LayoutSettings,
  log: (line: string) => void,
  processes: ProcessTree,
): Promise<LayoutContext> {
  const { endpoints } = stack;
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const region = endpoints.region;
  const dynamo = new DynamoDBClient({ region, endpoint: endpoints.dynamodb, credentials });
  const sqs = new SQSClient({ region, endpoint: endpoints.sqs, credentials });
  const kinesis = new KinesisClient({ region, endpoint: endpoints.kinesis, credentials });
  const documents = documentClient({ region, credentials, endpoints: { dynamodb: endpoints.dynamodb } });
  processes.onStop(() => {
    for (const client of [dynamo, sqs, kinesis, documents]) client.destroy();
  });
  const usageTable = required(stack, ENV.usageTable);
  const producer = await processes.start<unknown>(SCRIPTS.producer, {
    env: { ...stack.env, ...stack.awsEnv, ...CHILD_ENV },
  });
  return {
    settings,
    log,
    run: `${Date.now().toString(36)}${process.pid.toString(36)}`,
    stack,
    processes,
    usageTable,
    keysTable: required(stack, ENV.keysTable),
    accountsTable: required(stack, ENV.accountsTable),
    dynamo,
    documents,
    sqs,
    kinesis,
    ledger: new UsageLedger({
      reader: new UsageReader({ client: documents, table: usageTable }),
      firstDay: utcDay(Date.now()),
    }),
    producer,
  };
}

/** A made-up id as long as the real ones: hex of a hash of `seed`. */
const hex = (seed: string, length: number) =>
  createHash('sha256').update(seed).digest('hex').slice(0, length);

/**
 * Made-up accounts and keys for one (transport, layout) run, used by no other run, with ids of
 * the real ids' lengths (accounts: a UUID like Cognito's sub; keys: `key_` and 32 hex digits,
 * services/accounts/key-store.ts), so the items measured are the size real ones are.
 */
export function madeUpKeys(ctx: LayoutContext, tag: string, keys: number, accounts: number) {
  const accountIds = Array.from({ length: accounts }, (_, j) => {
    const h = hex(`${ctx.run}-${tag}-a${j}`, 32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  });
  return {
    accounts: accountIds,
    keys: Array.from({ length: keys }, (_, i) => ({
      keyId: `key_${hex(`${ctx.run}-${tag}-k${i}`, 32)}`,
      accountId: accountIds[i % accounts] as string,
    })),
  };
}

/** A queue shaped like the usage queue (contracts/resources.ts), dead-lettering to the stack's. */
async function createQueue(ctx: LayoutContext, name: string) {
  const dlqUrl = required(ctx.stack, ENV.usageDlqUrl);
  const arnOf = async (url: string) =>
    (await ctx.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
      .Attributes?.QueueArn as string;
  const dlqArn = await arnOf(dlqUrl);
  const queueUrl = (
    await ctx.sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(usageQueue.visibilityTimeoutSeconds),
          MessageRetentionPeriod: String(usageQueue.retentionSeconds),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqArn,
            maxReceiveCount: usageQueue.maxReceiveCount,
          }),
        },
      }),
    )
  ).QueueUrl as string;
  return { queueUrl, queueArn: await arnOf(queueUrl) };
}

/** A stream shaped like the usage stream, once ACTIVE. */
async function createStream(ctx: LayoutContext, name: string) {
  await ctx.kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: usageStream.shardCount }));
  for (let attempt = 0; attempt < 200; attempt++) {
    const summary = await ctx.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') {
      return { streamName: name, streamArn: summary.StreamDescriptionSummary.StreamARN ?? '' };
    }
    await sleep(100);
  }
  throw new Error(`${name} did not become ACTIVE`);
}

/**
 * A queue or stream of its own for one (transport, layout) run and a metering process reading it
 * (bench/proc/metering.ts, the previous layout through BENCH_COUNTER_LAYOUT): nothing of one run
 * is warm or waiting for another. Answers the metering child and where the producer sends.
 */
export async function startMetering(ctx: LayoutContext, transport: Transport, layout: Layout) {
  const name = `tollgate-layout-${ctx.run}-${transport}-${layout}`;
  const childEnv = {
    ...ctx.stack.env,
    ...ctx.stack.awsEnv,
    ...CHILD_ENV,
    TOLLGATE_TRANSPORT: transport,
    BENCH_COUNTER_LAYOUT: layout,
  };
  if (transport === 'sqs') {
    const { queueUrl, queueArn } = await createQueue(ctx, name);
    const metering = await ctx.processes.start<unknown>(SCRIPTS.metering, {
      args: ['sqs'],
      env: {
        ...childEnv,
        TOLLGATE_USAGE_QUEUE_URL: queueUrl,
        BENCH_QUEUE_URL: queueUrl,
        BENCH_QUEUE_ARN: queueArn,
      },
    });
    return { metering, target: queueUrl };
  }
  const { streamName, streamArn } = await createStream(ctx, name);
  const metering = await ctx.processes.start<unknown>(SCRIPTS.metering, {
    args: ['kinesis'],
    env: { ...childEnv, BENCH_STREAM_NAME: streamName, BENCH_STREAM_ARN: streamArn },
  });
  return { metering, target: streamName };
}
