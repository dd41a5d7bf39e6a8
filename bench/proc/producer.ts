import {
  type KinesisClient,
  PutRecordCommand,
  PutRecordsCommand,
  type PutRecordsRequestEntry,
} from '@aws-sdk/client-kinesis';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { newUsageEvent, type UsageEvent } from '../../contracts/usage-event';
import { callerWaitingClientConfig, outcomeUnknown } from '../../services/gate/publisher';
import { kinesisClient, sqsClient } from '../../services/shared/aws-clients';
import { serveParent } from '../lib/ipc';
import { installSdkCounter, snapshotCounts } from '../lib/sdk-counter';
import { seededRandom, summarize, zipfSampler } from '../lib/stats';
import type { PacedProducerStats, Transport } from '../lib/types';

/**
 * Child process: writes usage events straight to a transport, with no key API in front.
 *
 * - `paced`: the real UsageEvent (contracts/usage-event.ts newUsageEvent) at a steady rate, with
 *   SendMessageBatch (10 a call) or PutRecords (partition key = keyId, as key-api puts them), keys
 *   drawn Zipf over the given keys; returns how many events of each key were stored. A refused entry
 *   is sent again as it was (it was not stored); on Kinesis a call whose outcome is unknown (no
 *   answer, a 5xx) is sent again marked `resent`, as key-api's publisher does, so the consumer
 *   looks for the first copy; on SQS the same copy is sent again (the consumer drops it by its id).
 * - `putLoop`: bare PutRecord calls, `connections` in flight, with key-api's Kinesis client settings
 *   (callerWaitingClientConfig, maxAttempts 1, as services/key-api/compose.ts builds it), to a
 *   stream nobody reads: the emulator's ceiling for key-api's publish path, without HTTP or the handler.
 *
 * Its clients find the stack's engines through the AWS_* variables, as every child's do.
 */
interface PacedArgs {
  readonly transport: Transport;
  /** Queue URL or stream name. */
  readonly target: string;
  /** Hottest first; drawn Zipf(zipfS). */
  readonly keys: ReadonlyArray<{ readonly keyId: string; readonly accountId: string }>;
  readonly zipfS: number;
  readonly seed: number;
  readonly rate: number;
  readonly durationSec: number;
}

export interface PacedAnswer {
  /** Events stored per key index. */
  readonly stored: number[];
  readonly stats: PacedProducerStats;
  readonly startedAt: number;
  readonly endedAt: number;
}

interface PutLoopArgs {
  readonly streamName: string;
  readonly keys: ReadonlyArray<{ readonly keyId: string; readonly accountId: string }>;
  readonly connections: number;
  readonly durationSec: number;
}

const TICK_MS = 20;
const MAX_IN_FLIGHT = 32;
const SQS_BATCH = 10;
const KINESIS_BATCH = 500;
const MAX_TRIES = 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

serveParent(async () => {
  installSdkCounter();
  let sqs: SQSClient | undefined;
  let kinesis: KinesisClient | undefined;
  let keyApiKinesis: KinesisClient | undefined;

  async function paced(args: PacedArgs): Promise<PacedAnswer> {
    const draw = zipfSampler(args.keys.length, args.zipfS, seededRandom(args.seed));
    const stored = new Array<number>(args.keys.length).fill(0);
    const stats = { calls: 0, entries: 0, resentEntries: 0, failedCalls: 0 };
    const total = Math.round(args.rate * args.durationSec);

    const sendSqs = async (batch: Array<{ index: number; event: UsageEvent }>) => {
      sqs ??= sqsClient();
      let pending = batch;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt >= MAX_TRIES)
          throw new Error(`SendMessageBatch kept failing (${pending.length} entries)`);
        if (attempt > 0) stats.resentEntries += pending.length;
        stats.calls++;
        stats.entries += pending.length;
        try {
          const out = await sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: args.target,
              Entries: pending.map((p, n) => ({ Id: `e${n}`, MessageBody: JSON.stringify(p.event) })),
            }),
          );
          const failed = new Set((out.Failed ?? []).map((f) => f.Id));
          pending.forEach((p, n) => {
            if (!failed.has(`e${n}`)) stored[p.index] = (stored[p.index] ?? 0) + 1;
          });
          pending = pending.filter((_, n) => failed.has(`e${n}`));
        } catch {
          // Outcome unknown: the same copies again; the consumer's dedupe marks drop any twin.
          stats.failedCalls++;
          await sleep(100);
        }
      }
    };

    const sendKinesis = async (batch: Array<{ index: number; event: UsageEvent }>) => {
      // The publisher's rule: the client must not retry on its own (a silent second copy would be
      // counted twice on Kinesis); this loop does, and marks copies whose first attempt may be stored.
      kinesis ??= kinesisClient({}, { maxAttempts: 1 });
      let pending = batch;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt >= MAX_TRIES) throw new Error(`PutRecords kept failing (${pending.length} records)`);
        if (attempt > 0) stats.resentEntries += pending.length;
        stats.calls++;
        stats.entries += pending.length;
        const sentAt = Date.now();
        const entries: PutRecordsRequestEntry[] = pending.map((p) => ({
          PartitionKey: p.event.keyId,
          Data: Buffer.from(JSON.stringify(p.event)),
        }));
        try {
          const out = await kinesis.send(
            new PutRecordsCommand({ StreamName: args.target, Records: entries }),
          );
          const results = out.Records ?? [];
          const refused: typeof pending = [];
          pending.forEach((p, n) => {
            if (results[n]?.ErrorCode) refused.push(p);
            else stored[p.index] = (stored[p.index] ?? 0) + 1;
          });
          pending = refused;
          if (refused.length > 0) await sleep(50);
        } catch (error) {
          stats.failedCalls++;
          if (outcomeUnknown(error)) {
            pending = pending.map((p) => ({ ...p, event: { ...p.event, resent: p.event.resent ?? sentAt } }));
          }
          await sleep(100);
        }
      }
    };

    const chunk = args.transport === 'sqs' ? SQS_BATCH : KINESIS_BATCH;
    const send = args.transport === 'sqs' ? sendSqs : sendKinesis;
    const inFlight = new Set<Promise<void>>();
    let firstError: unknown;
    let scheduled = 0;
    const startedAt = Date.now();
    const start = performance.now();
    while (scheduled < total && firstError === undefined) {
      const due = Math.min(total, Math.floor((args.rate * (performance.now() - start)) / 1000));
      while (scheduled < due && inFlight.size < MAX_IN_FLIGHT) {
        const n = Math.min(chunk, due - scheduled);
        const now = new Date();
        const batch = Array.from({ length: n }, () => {
          const index = draw();
          const key = args.keys[index] as { keyId: string; accountId: string };
          return { index, event: newUsageEvent({ keyId: key.keyId, accountId: key.accountId, now }) };
        });
        scheduled += n;
        const call: Promise<void> = send(batch).then(
          () => {
            inFlight.delete(call);
          },
          (error: unknown) => {
            inFlight.delete(call);
            firstError ??= error;
          },
        );
        inFlight.add(call);
      }
      await sleep(TICK_MS);
    }
    await Promise.all(inFlight);
    if (firstError !== undefined) throw firstError;
    return { stored, stats, startedAt, endedAt: Date.now() };
  }

  async function putLoop(args: PutLoopArgs) {
    keyApiKinesis ??= kinesisClient({}, { ...callerWaitingClientConfig, maxAttempts: 1 });
    const client = keyApiKinesis;
    const latencies: number[] = [];
    let requests = 0;
    let ok = 0;
    let errors = 0;
    const start = performance.now();
    const until = start + args.durationSec * 1000;
    const worker = async (w: number) => {
      for (let i = w; performance.now() < until; i += args.connections) {
        const key = args.keys[i % args.keys.length] as { keyId: string; accountId: string };
        const event = newUsageEvent({ keyId: key.keyId, accountId: key.accountId, now: new Date() });
        const began = performance.now();
        requests++;
        try {
          await client.send(
            new PutRecordCommand({
              StreamName: args.streamName,
              PartitionKey: event.keyId,
              Data: Buffer.from(JSON.stringify(event)),
            }),
          );
          ok++;
          latencies.push(performance.now() - began);
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: args.connections }, (_, w) => worker(w)));
    const seconds = (performance.now() - start) / 1000;
    return { requests, ok, errors, reqPerSec: ok / seconds, latencyMs: summarize(latencies) };
  }

  return {
    ready: {},
    handlers: {
      paced: (args: PacedArgs) => paced(args),
      putLoop: (args: PutLoopArgs) => putLoop(args),
      snapshot: () => ({ sdk: snapshotCounts() }),
    },
    cleanUp: async () => {
      for (const client of [sqs, kinesis, keyApiKinesis]) client?.destroy();
    },
  };
});
