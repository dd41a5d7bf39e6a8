import { mkdir, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Endpoints } from '../../../infra/local/stack';

// Nothing here imports vitest: `npm run soak` runs this code outside the test runner.

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * Fresh SDK clients on the local engines: one set per simulated process (container). `config` is
 * what the service builds its clients with (e.g. key-api's timeouts and attempts).
 */
export function engineClients(endpoints: Endpoints, config: ClientTuning = {}) {
  const base = { region: endpoints.region, credentials, ...config };
  const dynamo = new DynamoDBClient({ ...base, endpoint: endpoints.dynamodb });
  return {
    dynamo,
    doc: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
    sqs: new SQSClient({ ...base, endpoint: endpoints.sqs }),
    kinesis: new KinesisClient({ ...base, endpoint: endpoints.kinesis }),
  };
}

/** The client settings a service may tune: its request handler's timeouts and its attempts. */
export interface ClientTuning {
  requestHandler?: { connectionTimeout?: number; requestTimeout?: number; throwOnRequestTimeout?: boolean };
  maxAttempts?: number;
}

export type EngineClients = ReturnType<typeof engineClients>;

type AnyClient = DynamoDBClient | SQSClient | KinesisClient;
const stackOf = (client: AnyClient) => client.middlewareStack as DynamoDBClient['middlewareStack'];

/**
 * Runs `around` for every command a real client sends: it may throw instead of sending (a fault),
 * or act once the answer came back (e.g. "die right after this write committed").
 */
export function aroundRequests(
  client: AnyClient,
  around: (commandName: string, send: () => Promise<unknown>) => Promise<unknown>,
): void {
  stackOf(client).add(
    (next, context) => async (args) =>
      (await around(context.commandName ?? '?', () => next(args))) as Awaited<ReturnType<typeof next>>,
    { step: 'initialize', name: `around-${Math.random()}` },
  );
}

export interface TestQueue {
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
}

let queueCount = 0;

/** A queue and its dead-letter queue of one test's own: nothing else reads or writes them. */
export async function createTestQueue(
  sqs: SQSClient,
  label: string,
  options: { visibilityTimeoutSeconds: number; maxReceiveCount: number },
): Promise<TestQueue> {
  const name = `rel-${label}-${process.pid}-${Date.now()}-${queueCount++}`;
  const arnOf = async (url: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
      .Attributes?.QueueArn as string;
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }))).QueueUrl as string;
  const dlqArn = await arnOf(dlqUrl);
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds),
          RedrivePolicy: JSON.stringify({
            maxReceiveCount: options.maxReceiveCount,
            deadLetterTargetArn: dlqArn,
          }),
        },
      }),
    )
  ).QueueUrl as string;
  return { queueUrl, queueArn: await arnOf(queueUrl), dlqUrl, dlqArn };
}

/** Messages in a queue (of the local-aws-sqs engine): visible, and received but not deleted yet. */
export async function queueCounts(
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  // local-aws-sqs counts messages in flight in ApproximateNumberOfMessages too (SQS does not).
  const all = Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
  const inFlight = Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  return { visible: Math.max(0, all - inFlight), inFlight };
}

/** Messages in a queue, visible or in flight. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { visible, inFlight } = await queueCounts(sqs, queueUrl);
  return visible + inFlight;
}

export async function sendBodies(sqs: SQSClient, queueUrl: string, bodies: readonly string[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.slice(i, i + 10).map((MessageBody, n) => ({ Id: `m${n}`, MessageBody })),
      }),
    );
  }
}

/**
 * Every message currently visible in a queue, with its attributes. `remove` deletes what was read;
 * otherwise the messages come back after `visibilityTimeout` seconds.
 */
export async function receiveAll(
  sqs: SQSClient,
  queueUrl: string,
  options: { remove: boolean; visibilityTimeout?: number },
): Promise<Message[]> {
  const all: Message[] = [];
  for (let empty = 0; empty < 2; ) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: options.visibilityTimeout ?? 30,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        // local-aws-sqs reads only the older name for system attributes.
        AttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      await sleep(50);
      continue;
    }
    all.push(...messages);
    if (options.remove) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: messages.map((m, n) => ({ Id: `d${n}`, ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
  }
  return all;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` passes or `timeoutMs` runs out; returns how long it took. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100) {
  const started = Date.now();
  while (Date.now() - started <= timeoutMs) {
    if (await check()) return Date.now() - started;
    await sleep(intervalMs);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Metric name → sum of every value stored, across drains. */
export type MetricTotals = Map<string, number>;

/**
 * Moves what a Powertools Metrics instance has stored (as it would emit it: `serializeMetrics()`)
 * into running totals and clears it. Draining after every invocation keeps each metric under
 * Powertools' 100-values auto-flush, so nothing is printed and nothing is lost.
 */
export function drainMetrics(metrics: Metrics, totals: MetricTotals): MetricTotals {
  if (!metrics.hasStoredMetrics()) return totals;
  const emf = metrics.serializeMetrics();
  for (const definition of emf._aws.CloudWatchMetrics[0]?.Metrics ?? []) {
    const value = emf[definition.Name];
    const values = Array.isArray(value) ? (value as number[]) : [Number(value)];
    totals.set(definition.Name, (totals.get(definition.Name) ?? 0) + values.reduce((a, b) => a + b, 0));
  }
  metrics.clearMetrics();
  return totals;
}

/** Where measured figures are kept for RELIABILITY.md (test-artifacts/ is not committed). */
export const FIGURES_DIR = join(process.cwd(), 'test-artifacts', 'reliability');

/** Prints a scenario's figures and keeps them as `test-artifacts/reliability/<scenario>.json`. */
export async function recordFigures(scenario: string, figures: Record<string, unknown>): Promise<void> {
  await mkdir(FIGURES_DIR, { recursive: true });
  const text = JSON.stringify({ scenario, at: new Date().toISOString(), ...figures }, null, 2);
  await writeFile(join(FIGURES_DIR, `${scenario}.json`), `${text}\n`);
  process.stdout.write(`[figures] ${scenario}: ${JSON.stringify(figures)}\n`);
}

/** Quantile of a sorted-on-demand sample (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

export interface PartitionProxy {
  /** The proxy's URL: point a client here instead of at the engine. */
  endpoint: string;
  /** From now on nothing gets through either way; connections stay open and silent (a partition). */
  hang(): void;
  heal(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of an engine that can go silent: requests are accepted and never answered,
 * the way a network partition or a stuck dependency looks to a client (no error, just nothing).
 */
export async function startPartitionProxy(target: string): Promise<PartitionProxy> {
  const { hostname, port } = new URL(target);
  let hung = false;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  const server: Server = createServer((client) => {
    track(client);
    if (hung) return; // accepted, never answered
    const upstream = connect(Number(port), hostname);
    track(upstream);
    client.on('data', (chunk) => {
      if (!hung) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!hung) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listenPort = await freePort();
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${listenPort}`,
    hang: () => {
      hung = true;
    },
    heal: () => {
      hung = false;
      // Connections that swallowed bytes while hung are out of step: drop them.
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
