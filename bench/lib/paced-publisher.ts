import { type KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { newProducerId, newUsageEvent, ProducerSequence, type UsageEvent } from '../../contracts/usage-event';
import { outcomeUnknown } from '../../services/gate/publisher';
import { seededRandom, zipfSampler } from './stats';
import type { PacedProducerStats, Transport } from './types';

/**
 * The producer process's `paced` command (bench/proc/producer.ts): the real UsageEvent
 * (contracts/usage-event.ts newUsageEvent) at a steady rate, with SendMessageBatch (10 a call) or
 * PutRecords (partition key = keyId, as key-api puts them), keys drawn Zipf over the given keys;
 * answers how many events of each key were stored. A refused entry is sent again as it was (it was
 * not stored); on Kinesis a call whose outcome is unknown (no answer, a 5xx) is sent again marked
 * `resent`, as key-api's publisher does, so the consumer looks for the first copy; on SQS the same
 * copy is sent again (the consumer drops it by its id).
 */
export interface PacedArgs {
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

/** The producer's clients, made on first use: SQS as any client, Kinesis without retries of its own. */
export interface PacedClients {
  sqs(): SQSClient;
  kinesis(): KinesisClient;
}

interface Entry {
  readonly index: number;
  readonly event: UsageEvent;
}
type Send = (batch: Entry[]) => Promise<void>;
/** What the sends of one paced run add up: events stored per key index, and the call counts. */
interface Tally {
  readonly stored: number[];
  readonly stats: { calls: number; entries: number; resentEntries: number; failedCalls: number };
}

const TICK_MS = 20;
const MAX_IN_FLIGHT = 32;
const SQS_BATCH = 10;
const KINESIS_BATCH = 500;
const MAX_TRIES = 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sqsSender(sqs: SQSClient, queueUrl: string, { stored, stats }: Tally): Send {
  return async (batch) => {
    let pending = batch;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= MAX_TRIES) throw new Error(`SendMessageBatch kept failing (${pending.length} entries)`);
      if (attempt > 0) stats.resentEntries += pending.length;
      stats.calls++;
      stats.entries += pending.length;
      try {
        const out = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
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
}

/**
 * The publisher's rule: the client must not retry on its own (a silent second copy would be
 * counted twice on Kinesis); this loop does, and marks copies whose first attempt may be stored.
 */
function kinesisSender(kinesis: KinesisClient, streamName: string, { stored, stats }: Tally): Send {
  return async (batch) => {
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
        const out = await kinesis.send(new PutRecordsCommand({ StreamName: streamName, Records: entries }));
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
}

/** Producers (gate containers) a paced run's events come from. */
const PACED_PRODUCERS = 1;

/**
 * Schedules `rate × durationSec` events: every tick, the events due by then, in batches of `chunk`,
 * at most MAX_IN_FLIGHT calls at once; the first failed call stops the schedule and is thrown.
 */
async function schedule(args: PacedArgs, chunk: number, send: Send): Promise<void> {
  const draw = zipfSampler(args.keys.length, args.zipfS, seededRandom(args.seed));
  // One gate container, as the bench's key-api is one process: its events numbered as a gate numbers
  // them (what the SQS ledger claims). Each more container adds one share item per account a flush writes.
  const producers = Array.from({ length: PACED_PRODUCERS }, () => ({
    id: newProducerId(),
    sequence: new ProducerSequence(),
  }));
  let numbered = 0;
  const total = Math.round(args.rate * args.durationSec);
  const inFlight = new Set<Promise<void>>();
  let firstError: unknown;
  let scheduled = 0;
  const start = performance.now();
  while (scheduled < total && firstError === undefined) {
    const due = Math.min(total, Math.floor((args.rate * (performance.now() - start)) / 1000));
    while (scheduled < due && inFlight.size < MAX_IN_FLIGHT) {
      const n = Math.min(chunk, due - scheduled);
      const now = new Date();
      const batch = Array.from({ length: n }, () => {
        const index = draw();
        const key = args.keys[index] as { keyId: string; accountId: string };
        const producer = producers[numbered++ % producers.length] as (typeof producers)[number];
        const event = newUsageEvent({
          keyId: key.keyId,
          accountId: key.accountId,
          now,
          producerId: producer.id,
          sequence: producer.sequence.next(now.getTime()),
        });
        return { index, event };
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
}

/** One paced run of `args.transport`, with the producer's clients. */
export async function publishPaced(args: PacedArgs, clients: PacedClients): Promise<PacedAnswer> {
  const tally: Tally = {
    stored: new Array<number>(args.keys.length).fill(0),
    stats: { calls: 0, entries: 0, resentEntries: 0, failedCalls: 0 },
  };
  const startedAt = Date.now();
  if (args.transport === 'sqs') await schedule(args, SQS_BATCH, sqsSender(clients.sqs(), args.target, tally));
  else await schedule(args, KINESIS_BATCH, kinesisSender(clients.kinesis(), args.target, tally));
  return { stored: tally.stored, stats: tally.stats, startedAt, endedAt: Date.now() };
}
