import { FLUSH_PROFILES, type FlushProfile } from '../../services/metering/ledger/policy';

/**
 * The AWS limits the head contention model rests on (docs/metering.md, "Head contention on AWS
 * (modelled)", lists the pages). None of them can be measured on the local stack: DynamoDB Local
 * has no per-partition limits and the local poller is not Lambda's event source mapping.
 */
export const AWS = {
  /** A partition serves at most 1,000 write units and 3,000 read units a second, even when adaptive
   * capacity isolates one hot item on a partition of its own (DynamoDB developer guide, "warm
   * throughput scenarios"; "Key range throughput exceeded"). HEAD and DONE share a partition key. */
  partitionWcuPerS: 1_000,
  partitionRcuPerS: 3_000,
  /** A standard write unit covers 1 KB of the larger of the item's before and after images; a failed
   * condition is still billed. A strongly consistent read unit covers 4 KB. */
  writeUnitBytes: 1_024,
  readUnitBytes: 4_096,
  /** The largest item DynamoDB stores: a head beyond it cannot be written at all. */
  maxItemBytes: 400 * 1_024,
  /** ESM BatchSize for a standard queue (≤ 10,000, and ≥ 1 s of batching window above 10). */
  maxBatchRecords: 10_000,
  /** A batch is also cut at the 6 MB synchronous invocation payload. */
  maxPayloadBytes: 6 * 1_024 * 1_024,
  /** MaximumConcurrency ranges 2–1,000; without it the ESM scales to 1,250 concurrent invocations
   * (5 at first, +300 a minute while messages remain). */
  maxConcurrency: 1_250,
} as const;

/** The ledger's own figures (services/metering/ledger/, and the design note §5.6). */
export const LEDGER = {
  /** ledger.ts: a batch whose commit lost this many races gives up; SQS redelivers it. */
  maxCommitAttempts: 20,
  /** flushThrough's wait: pollMs, doubling up to 8 × pollMs. */
  pollMs: 25,
  /** A flush claim older than this is taken over. */
  leaseMs: 10_000,
  /** Head bytes: fixed part, per active producer (range record), per pending journal (pend entry). */
  headBaseBytes: 200,
  headProducerBytes: 50,
  headPendingBytes: 30,
  /** runFlush applies counters with this much concurrency. */
  counterConcurrency: 16,
} as const;

/** One scenario: the traffic, the event source and the latencies of DynamoDB calls. */
export interface Scenario {
  /** Events a second into the queue (one ledger's queue). */
  rate: number;
  /** MaximumBatchingWindowInSeconds, in ms. */
  windowMs: number;
  /** Concurrent batches (ESM pollers / MaximumConcurrency). */
  concurrency: number;
  /** Active producers in the head (gate containers seen within the archive idle time). */
  producers: number;
  profile: FlushProfile;
  /** Median latency of a consistent GetItem and of a PutItem (≤ 1 KB), in ms. */
  readMs: number;
  writeMs: number;
  /** Extra latency per KB of item read or written (a 100 KB head is slower to move than 1 KB). */
  msPerKb: number;
  /** Log-normal spread of each call's latency (σ of ln): 0.35 puts p99 at about 2.3 × the median. */
  latencySigma: number;
  /** Jitter of the moment a batching window closes (uniform ± this, ms): the event source's pollers
   * long-poll and hand batches over on their own schedules. Without any, pollers that collide once
   * retry in step and fall into phase (see the doc: a modelling choice the figures depend on). */
  gatherJitterMs: number;
  /** Lambda's invocation overhead and the batch's validation before the ledger (ms). */
  invokeMs: number;
  /** The ledger's CPU between reading the head and writing it: fixed + per event (ms). */
  computeMs: number;
  computeMsPerEvent: number;
  /** One SQS record as Lambda hands it over (body + receipt handle, attributes, md5, ARNs). */
  recordBytes: number;
  /** Distinct counters among the keys (Zipf(1) over `keys`, as the bench draws them). */
  keys: number;
  /** SQS visibility timeout: a batch that gave up comes back after it. */
  visibilityMs: number;
  /** Simulated time: a warm-up (not measured), then the measured span. */
  warmupMs: number;
  measureMs: number;
  seed: number;
}

/** Defaults: the ledger's balanced profile at the benchmark's rate, on one ESM with 5 pollers. */
export const DEFAULT_SCENARIO: Scenario = {
  rate: 1_000,
  windowMs: 1_000,
  concurrency: 5,
  producers: 60,
  profile: 'balanced',
  readMs: 6,
  writeMs: 8,
  msPerKb: 0.05,
  latencySigma: 0.35,
  gatherJitterMs: 100,
  invokeMs: 15,
  computeMs: 2,
  computeMsPerEvent: 0.002,
  recordBytes: 1_400,
  keys: 100,
  visibilityMs: 60_000,
  warmupMs: 3_000,
  measureMs: 40_000,
  seed: 1,
};

export const scenario = (overrides: Partial<Scenario>): Scenario => ({ ...DEFAULT_SCENARIO, ...overrides });

export const flushPolicy = (profile: FlushProfile) => FLUSH_PROFILES[profile];

/** Records in one batch at most: BatchSize, or the 6 MB payload, whichever cuts first. */
export const batchCap = (s: Scenario): number =>
  Math.min(AWS.maxBatchRecords, Math.floor(AWS.maxPayloadBytes / s.recordBytes));

export const headBytes = (producers: number, pending: number): number =>
  LEDGER.headBaseBytes + LEDGER.headProducerBytes * producers + LEDGER.headPendingBytes * pending;

/** Write units of a put replacing an item of `before` bytes by one of `after` (at least 1). */
export const writeUnits = (before: number, after: number): number =>
  Math.max(1, Math.ceil(Math.max(before, after) / AWS.writeUnitBytes));

export const consistentReadUnits = (bytes: number): number =>
  Math.max(1, Math.ceil(bytes / AWS.readUnitBytes));

/** Expected distinct keys among n Zipf(1) draws over `keys` keys: Σ 1 − (1 − pᵢ)ⁿ (design note §1.2). */
export function distinctKeys(n: number, keys: number): number {
  let norm = 0;
  for (let i = 1; i <= keys; i++) norm += 1 / i;
  let k = 0;
  for (let i = 1; i <= keys; i++) k += 1 - (1 - 1 / i / norm) ** n;
  return k;
}

/** Producers the design note expects: about 2 × (rate × 30 ms) gate containers (§3), at least 1. */
export const expectedProducers = (rate: number): number => Math.max(1, Math.round(2 * rate * 0.03));
