import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../../contracts/config';
import { usageQueue, usageStream } from '../../contracts/resources';
import { utcDay } from '../../contracts/usage-event';
import { findFreePorts } from '../../infra/local/ports';
import { documentClient } from '../../services/platform/aws-clients';
import { sqsPendingUsage } from '../../services/usage/pending-usage';
import { UsageReader } from '../../services/usage/usage-reader';
import { createBaselineTable, seedBaselineUsers } from '../baseline/table';
import { type Owner, UserApi } from './accounts';
import type { BenchContext, BenchKey, BenchResources, TransportSide } from './bench-context';
import { sleep } from './bench-context';
import { UsageLedger } from './exact';
import type { ProcessTree } from './process-tree';
import { type BenchSettings, type StackInfo, TRANSPORTS, type Transport } from './types';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
export const SCRIPTS = {
  stack: here('../proc/stack.ts'),
  server: here('../proc/server.ts'),
  metering: here('../proc/metering.ts'),
  producer: here('../proc/producer.ts'),
  cpu: here('../proc/cpu.ts'),
};
export const CHILD_ENV = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

function required(stack: StackInfo, name: string): string {
  const value = stack.env[name];
  if (!value) throw new Error(`the stack gave no ${name}`);
  return value;
}

/**
 * The benchmark's own queue and stream, set up like the stack's (contracts/resources.ts), so that
 * only the benchmark's metering consumer reads them; refused records go to the stack's dead-letter
 * queue. And the publish check's stream: shaped like the usage stream, read by no one (so its
 * records are counted nowhere).
 */
async function createTransports(stack: StackInfo, sqs: SQSClient, kinesis: KinesisClient, run: string) {
  const dlqUrl = stack.env.TOLLGATE_USAGE_DLQ_URL as string;
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn as string;
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: `tollgate-bench-${run}-usage`,
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
  const queueArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn as string;
  const createStream = async (name: string) => {
    await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: usageStream.shardCount }));
    for (let attempt = 0; attempt < 200; attempt++) {
      const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
      if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') {
        return summary.StreamDescriptionSummary.StreamARN ?? '';
      }
      await sleep(100);
    }
    throw new Error(`${name} did not become ACTIVE`);
  };
  const streamName = `tollgate-bench-${run}-usage-stream`;
  const checkStreamName = `tollgate-bench-${run}-publish-check`;
  const [streamArn] = await Promise.all([createStream(streamName), createStream(checkStreamName)]);
  return { queueUrl, queueArn, streamName, streamArn: streamArn as string, checkStreamName };
}

/** Owners (signed up like people, five at a time) and their keys: key i in owner i % owners. */
async function signUpSide(
  users: UserApi,
  settings: BenchSettings,
  transport: Transport,
): Promise<TransportSide> {
  const signUpOwners = async (label: string, count: number) => {
    const out: Array<{ owner: Owner; accountId: string }> = [];
    for (let i = 0; i < count; i += 5) {
      const batch = Array.from({ length: Math.min(5, count - i) }, async (_, n) => {
        const owner = await users.signUp(`${label}${i + n}`);
        return { owner, accountId: await users.accountId(owner) };
      });
      out.push(...(await Promise.all(batch)));
    }
    return out;
  };
  const issueKeys = async (
    owners: ReadonlyArray<{ owner: Owner; accountId: string }>,
    count: number,
    label: string,
  ) => {
    const keys: BenchKey[] = new Array(count);
    await Promise.all(
      owners.map(async ({ owner, accountId }, o) => {
        for (let i = o; i < count; i += owners.length) {
          keys[i] = { ...(await users.createKey(owner, `${label}-${i}`)), accountId };
        }
      }),
    );
    return keys;
  };
  const httpOwners = await signUpOwners(`${transport}-owner`, settings.accounts);
  const sustainedOwners = await signUpOwners(`${transport}-sustained`, settings.sustained.accounts);
  const [httpKeys, sustainedKeys] = await Promise.all([
    issueKeys(httpOwners, settings.keys, `bench-${transport}`),
    issueKeys(sustainedOwners, settings.sustained.keys, `sustained-${transport}`),
  ]);
  const first = httpOwners[0] as { owner: Owner; accountId: string };
  const probeKey = {
    ...(await users.createKey(first.owner, `probe-${transport}`)),
    accountId: first.accountId,
  };
  const all = [...httpKeys, probeKey, ...sustainedKeys];
  return {
    transport,
    httpOwners,
    httpKeys,
    probeKey,
    sustainedAccounts: sustainedOwners.map((o) => o.accountId),
    sustainedKeys,
    keyAccount: new Map(all.map((k) => [k.id, k.accountId])),
    accounts: [...httpOwners, ...sustainedOwners].map((o) => o.accountId),
  };
}

/**
 * The parts under test, a process each: a metering consumer per transport, key-api on SQS and on
 * Kinesis, the baseline, and the producer. Each child composes its handler from the stack's
 * settings; its SDK clients find the stack's engines through the AWS_* variables.
 */
async function startParts(stack: StackInfo, resources: BenchResources, processes: ProcessTree) {
  const { queueUrl, queueArn, streamName, streamArn, baselineTable } = resources;
  const childEnv = { ...stack.env, ...stack.awsEnv, ...CHILD_ENV };
  const ports = await findFreePorts();
  const [sqsMetering, kinesisMetering, sqsServer, kinesisServer, baselineServer, producer] =
    await Promise.all([
      processes.start<unknown>(SCRIPTS.metering, {
        args: ['sqs'],
        // Its own queue for the ledger's scheduled tails too (the stack's would be another consumer's).
        env: {
          ...childEnv,
          TOLLGATE_TRANSPORT: 'sqs',
          TOLLGATE_USAGE_QUEUE_URL: queueUrl,
          BENCH_QUEUE_URL: queueUrl,
          BENCH_QUEUE_ARN: queueArn,
        },
      }),
      processes.start<unknown>(SCRIPTS.metering, {
        args: ['kinesis'],
        env: {
          ...childEnv,
          TOLLGATE_TRANSPORT: 'kinesis',
          BENCH_STREAM_NAME: streamName,
          BENCH_STREAM_ARN: streamArn,
        },
      }),
      processes.start<{ endpoint: string }>(SCRIPTS.server, {
        args: ['tollgate', String(ports.keyApi)],
        env: { ...childEnv, TOLLGATE_TRANSPORT: 'sqs', TOLLGATE_USAGE_QUEUE_URL: queueUrl },
      }),
      processes.start<{ endpoint: string }>(SCRIPTS.server, {
        args: ['tollgate', String(ports.userApi)],
        env: { ...childEnv, TOLLGATE_TRANSPORT: 'kinesis', TOLLGATE_USAGE_STREAM_NAME: streamName },
      }),
      processes.start<{ endpoint: string }>(SCRIPTS.server, {
        args: ['baseline', String(ports.web)],
        env: { ...childEnv, BENCH_BASELINE_TABLE: baselineTable },
      }),
      processes.start<unknown>(SCRIPTS.producer, { env: childEnv }),
    ]);
  return {
    metering: { sqs: sqsMetering, kinesis: kinesisMetering },
    servers: { baseline: baselineServer, sqs: sqsServer, kinesis: kinesisServer },
    producer,
  };
}

/**
 * Everything the phases need, on a running stack: the orchestrator's clients, the benchmark's queue,
 * streams and baseline table, each transport's owners and keys, and the parts under test started.
 */
export async function setUp(
  stack: StackInfo,
  settings: BenchSettings,
  log: (line: string) => void,
  processes: ProcessTree,
): Promise<BenchContext> {
  const { endpoints } = stack;
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const region = endpoints.region;
  const dynamo = new DynamoDBClient({ region, endpoint: endpoints.dynamodb, credentials });
  const sqs = new SQSClient({ region, endpoint: endpoints.sqs, credentials });
  const kinesis = new KinesisClient({ region, endpoint: endpoints.kinesis, credentials });
  const documents = documentClient({ region, credentials, endpoints: { dynamodb: endpoints.dynamodb } });
  const users = new UserApi(stack);
  processes.onStop(() => {
    for (const client of [dynamo, sqs, kinesis, documents]) client.destroy();
    users.close();
  });
  const run = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const firstDay = utcDay(Date.now());
  const usageTable = required(stack, ENV.usageTable);
  const keyPrefix = stack.env[ENV.keyPrefix] ?? 'tg';
  const keysTable = required(stack, ENV.keysTable);
  const ledger = new UsageLedger({
    // As user-api reads: with what the SQS ledger committed and has not flushed yet.
    reader: new UsageReader({
      client: documents,
      table: usageTable,
      pending: sqsPendingUsage({ client: documents, table: usageTable }),
    }),
    firstDay,
  });

  log('setup: queue, streams, baseline table, accounts and keys');
  const transports = await createTransports(stack, sqs, kinesis, run);
  const baselineTable = `tollgate-bench-${run}-baseline-users`;
  await createBaselineTable(dynamo, baselineTable);
  const baselineUsers = await seedBaselineUsers(dynamo, baselineTable, settings.keys);
  const sides = {} as Record<Transport, TransportSide>;
  for (const transport of TRANSPORTS) sides[transport] = await signUpSide(users, settings, transport);
  const resources: BenchResources = { ...transports, baselineTable };
  const parts = await startParts(stack, resources, processes);
  return {
    settings,
    log,
    run,
    firstDay,
    keyPrefix,
    keysTable,
    dynamo,
    documents,
    users,
    ledger,
    resources,
    baselineKeys: baselineUsers.map((u) => u.key),
    sides,
    ...parts,
    exactChecks: [],
  };
}
