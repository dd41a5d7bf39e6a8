import type { Endpoints } from '../../infra/local/stack';
import type { Counts } from './sdk-counter';
import type { Summary } from './stats';

export type Transport = 'sqs' | 'kinesis';
/** What is measured side by side: the article's design and Tollgate on each transport. */
export type Target = 'baseline' | Transport;
export const TARGETS: readonly Target[] = ['baseline', 'sqs', 'kinesis'];
export const TRANSPORTS: readonly Transport[] = ['sqs', 'kinesis'];
export const TARGET_LABELS: Readonly<Record<Target, string>> = {
  baseline: 'baseline (article; comparison only)',
  sqs: 'Tollgate, SQS',
  kinesis: 'Tollgate, Kinesis',
};

export interface StackInfo {
  readonly endpoints: Endpoints;
  /** The handlers' settings (TOLLGATE_*), by the names of contracts/config.ts. */
  readonly env: Record<string, string>;
  /** The AWS SDK's variables (region, credentials, AWS_ENDPOINT_URL_*) that point a child's clients at the stack. */
  readonly awsEnv: Record<string, string>;
  readonly dataDir: string;
}

export interface ServerSnapshot {
  readonly invocations: number;
  readonly statuses: Record<string, number>;
  /** 200s answered per key id (read from each 200's body): Tollgate only, cumulative since start. */
  readonly ok200ByKey: Record<string, number>;
  readonly sdk: Counts;
}

export interface ConsumerSnapshot {
  readonly sdk: Counts;
  readonly invocations: number;
  readonly records: number;
  readonly failed: number;
  /** Since the last resetSamples. */
  readonly durationMs: Summary;
  /**
   * Event time (minted by key-api) to visible in usage reads (its batch committed), per counted
   * event, since resetSamples.
   */
  readonly lagMs: Summary;
  /** Event time to in the counters themselves (SQS ledger: its journal flushed); older results lack it. */
  readonly counterLagMs?: Summary;
  /** Events the consumer added to counters, and copies it dropped as already counted (cumulative). */
  readonly counted: number;
  readonly duplicates: number;
}

/** Lags since resetSamples, split by when the event was counted: up to `splitAt`, and after it. */
export interface LagSplit {
  readonly until: Summary;
  readonly after: Summary;
}

export interface LoadResult {
  readonly durationSec: number;
  readonly requests: number;
  readonly reqPerSec: number;
  readonly statuses: Record<string, number>;
  readonly ok200: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly latencyMs: Summary;
  /** Average bytes on the wire per response (status line, headers, body) and per request. */
  readonly responseBytes: number;
  readonly requestBytes: number;
  /** 200s per key index: for the per-key exactness check; not saved. */
  readonly perKey200?: number[];
}

export interface CpuRow {
  readonly name: string;
  readonly what: string;
  readonly iterations: number;
  readonly rounds: number;
  /** Median round. */
  readonly nsPerOp: number;
  readonly minNsPerOp: number;
  /** This process's CPU time per operation (user + system, all threads), median round. */
  readonly cpuNsPerOp: number;
  readonly ratioToSha256: number;
  /**
   * Rows answering HTTP: every answer's status, the unmeasured round's included, by code (all 200
   * in a run that finished: the child fails otherwise). Absent for the other rows and in results
   * from before it was counted.
   */
  readonly statuses?: Record<string, number>;
}

/**
 * The speed goal for the gate: its CPU per request in process within this many times the
 * key-api check's (the 'handler' row), both measured in the same run.
 */
export const GATE_CPU_TARGET = 1.2;

/**
 * The plans issue's goal: the gate's CPU per request with a plan attached (a quota and a rate limit
 * enforced) within this many times the same gate without one ('gate-alb-plan' ÷ 'gate-alb').
 */
export const PLAN_CPU_TARGET = 1.3;

/** One gate row against the key-api check ('handler'), in the same run. */
export interface GateCpuRatio {
  /** Its CPU ns per op ÷ the handler's: what the target is held against. */
  readonly cpuRatio: number;
  /** Its wall ns per op ÷ the handler's, for reference. */
  readonly wallRatio: number;
  /** cpuRatio ≤ the target. */
  readonly met: boolean;
}

export interface GateCpuCheck {
  /** GATE_CPU_TARGET when the run was made. */
  readonly target: number;
  /** The row the gate rows are divided by. */
  readonly against: 'handler';
  /** 'gate-alb': composeGate's ALB handler wrapper around a trivial owner handler. */
  readonly alb: GateCpuRatio;
  /** 'gate-hono': its Hono middleware on a Hono app, via app.request (Hono's Request/Response work included). */
  readonly hono: GateCpuRatio & {
    /**
     * ('gate-hono' − 'hono-bare') CPU ns per op ÷ the handler's: the middleware's own share, Hono's
     * work taken out (a difference of two medians: an indication, not a measurement of its own).
     */
    readonly middlewareCpuRatio?: number;
  };
  /** The target's verdict: the ALB wrapper (the gate and its thinnest adapter) within it. */
  readonly met: boolean;
  /**
   * 'gate-alb-plan' ÷ 'gate-alb' (CPU): a plan with a quota and a rate limit against none, held
   * against PLAN_CPU_TARGET. Absent in results from before the plan row.
   */
  readonly plan?: {
    readonly target: number;
    readonly cpuRatio: number;
    readonly wallRatio: number;
    readonly met: boolean;
  };
}

export interface CpuResults {
  readonly rows: CpuRow[];
  /** CloudWatch-billed bytes of key-api's metrics per invocation on Lambda, amortized over its buffered flushes. */
  readonly emfLineBytes: number;
  /** The gate rows against the key-api check; absent in results from before the gate rows. */
  readonly gate?: GateCpuCheck;
}

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  readonly loadAverageAtStart: number[];
  readonly commit: string;
  readonly dirty: boolean;
}

/**
 * One transport's side of "every accepted request is counted once", checked on its own: its own
 * accounts and keys, so a double count on one transport cannot hide a loss on the other. Answered
 * is what its key API answered 200 to (or what the paced producer stored); counted is what
 * metering wrote, read from DynamoDB with UsageReader (strongly consistent).
 */
export interface TransportExact {
  readonly transport: Transport;
  readonly answered: number;
  readonly counted: number;
  /** Keys checked, and how many of them counted other than they were answered. */
  readonly keys: number;
  readonly keysWrong: number;
  /** Accounts checked (their daily counts over the run's days), and how many are off. */
  readonly accounts: number;
  readonly accountsWrong: number;
  /** Total, every key and every account. */
  readonly ok: boolean;
  /** How long after the check began the totals matched. */
  readonly settledMs: number;
  /** The first few mismatches, for the report. */
  readonly mismatches: string[];
}

/** "Every 200 is counted once", after a phase: each transport alone, and the baseline. */
export interface ExactCheck {
  readonly phase: string;
  /** Sums over the transports and the baseline (for a glance; `ok` is the conjunction of the parts). */
  readonly answered200: number;
  readonly counted: number;
  readonly ok: boolean;
  /** How long after the load stopped the counts matched (the slowest part). */
  readonly settledMs: number;
  readonly transports: Partial<Record<Transport, TransportExact>>;
  readonly baseline?: { readonly answered: number; readonly counted: number; readonly ok: boolean };
}

export interface HttpTargetResult {
  /** One load run per round. */
  readonly runs: LoadResult[];
  /** Medians over the rounds. */
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ratioToBaseline: { readonly reqPerSec: number; readonly p50: number; readonly p99: number };
  /** One connection, one request at a time: the latency of an idle service, and the handler's own time. */
  readonly sequential: { readonly latencyMs: Summary; readonly handlerMs: Summary };
}

export interface WriteRun {
  readonly target: Target;
  readonly events: number;
  readonly durationSec: number;
  readonly reqPerSec: number;
  /** Every DynamoDB request and the capacity reported, by operation (keys as in sdk-counter). */
  readonly dynamodb: Counts;
  /** Every SQS or Kinesis request of the producer and the consumer, by operation. */
  readonly transport: Counts;
  readonly perEvent: {
    readonly writeRequests: number;
    /** As AWS bills them: 2 per transactional item, engine-reported units otherwise. */
    readonly writeUnits: number;
    /** What DynamoDB Local reported (it counts 1, not 2, per transactional item). */
    readonly engineWriteUnits: number;
    readonly readRequests: number;
    readonly readUnits: number;
    /** SQS: billed requests (send + receive + delete + dead-letter); Kinesis: 0 (PUTs are billed per unit). */
    readonly transportRequests: number;
    /** Kinesis PUT payload units (25 KB each). */
    readonly payloadUnits: number;
    readonly meteringInvocations: number;
  };
  readonly metering?: {
    readonly invocations: number;
    readonly records: number;
    readonly avgBatch: number;
    readonly durationMs: Summary;
    readonly lagMs: Summary;
    /** Average size of one dedupe mark item (attribute names and values). */
    readonly markItemBytes: number;
  };
  readonly exact: ExactCheck;
  /** This transport's every key and account counted exactly its 200s; not applicable to the baseline. */
  readonly perKeyExact: boolean | null;
}

/** What wrk (bench/wrk/keys.lua) reports: one JSON line from its done(). */
export interface WrkResult {
  readonly durationSec: number;
  readonly requests: number;
  readonly statuses: Record<string, number>;
  /** 200s per key id, from each 200's body, summed over wrk's threads. */
  readonly ok200ByKey: Record<string, number>;
  /** 200s whose body had no key id (should be 0). */
  readonly unparsed200: number;
  readonly errors: {
    readonly connect: number;
    readonly read: number;
    readonly write: number;
    readonly status: number;
    readonly timeout: number;
  };
  readonly latencyMs: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
  };
}

/** The sustained load phase on one transport: wrk against key-api, then the pipeline draining. */
export interface SustainedRun {
  readonly transport: Transport;
  readonly connections: number;
  readonly threads: number;
  readonly durationSec: number;
  readonly keys: number;
  readonly accounts: number;
  readonly bogusKeys: number;
  readonly bogusShare: number;
  readonly wrk: WrkResult;
  /** All answers a second, and 200s a second (what was accepted, by key-api's own count). */
  readonly reqPerSec: number;
  readonly acceptedPerSec: number;
  /** 200s key-api answered during the phase, by the time the load ended and in all. */
  readonly acceptedAtEnd: number;
  readonly accepted: number;
  /** Counted (DynamoDB) the moment the load ended, and the difference: the backlog. */
  readonly countedAtEnd: number;
  readonly backlogAtEnd: number;
  /** From the end of the load to counted == accepted. */
  readonly drainMs: number;
  /** Usage lag (event time → counted) of the events counted during the load, and after it. */
  readonly lagDuringMs: Summary;
  readonly lagAfterMs: Summary;
  readonly consumer: {
    readonly invocations: number;
    readonly records: number;
    readonly avgBatch: number;
    readonly duplicates: number;
  };
  /** wrk's own 200s per key against key-api's: no key above key-api's count, the gap within what was in flight. */
  readonly client: { readonly ok200: number; readonly gap: number; readonly agrees: boolean };
  readonly exact: TransportExact;
}

/** Events published straight to one transport at a steady rate, consumed by the bench's metering process. */
export interface PacedRun {
  readonly transport: Transport;
  /** SQS runs with another flush profile than the default (settings.paced.ledgerProfiles). */
  readonly ledgerFlush?: string;
  /** Events a second asked for, and got (stored ÷ the producer's time). */
  readonly rate: number;
  readonly achievedPerSec: number;
  readonly durationSec: number;
  readonly events: number;
  readonly keys: number;
  readonly accounts: number;
  readonly zipfS: number;
  readonly producer: PacedProducerStats;
  /** The consumer's DynamoDB requests and its transport requests, by operation (sdk-counter keys). */
  readonly dynamodb: Counts;
  readonly transportCounts: Counts;
  readonly perEvent: {
    readonly writeRequests: number;
    /** As AWS bills them: 2 per transactional item, engine-reported units otherwise. */
    readonly writeUnits: number;
    readonly engineWriteUnits: number;
    /** SQS: the consumer's billed receives (empty ones left out) and deletes; Kinesis: 0. */
    readonly consumerTransportRequests: number;
    readonly meteringInvocations: number;
  };
  readonly metering: {
    readonly invocations: number;
    readonly records: number;
    readonly avgBatch: number;
    readonly durationMs: Summary;
    readonly lagMs: Summary;
    readonly counterLagMs?: Summary;
    readonly duplicates: number;
  };
  /** From the producer's last event to counted == stored. */
  readonly drainMs: number;
  readonly exact: TransportExact;
}

export interface PacedProducerStats {
  readonly calls: number;
  readonly entries: number;
  /** Entries sent again: refused in a batch answer (not stored), or after a call whose outcome was unknown. */
  readonly resentEntries: number;
  readonly failedCalls: number;
}

/** Bare PutRecord calls (key-api's client settings, no HTTP, no handler) next to key-api over HTTP. */
export interface PublishCheck {
  readonly connections: number;
  readonly durationSec: number;
  readonly bare: {
    readonly requests: number;
    readonly ok: number;
    readonly errors: number;
    readonly reqPerSec: number;
    readonly latencyMs: Summary;
  };
  /** The sustained Kinesis phase: 200s a second and wrk's p50 at the same number of connections. */
  readonly keyApi: { readonly acceptedPerSec: number; readonly p50Ms: number };
  /** bare ÷ key-api. */
  readonly ratio: number;
}

export interface FreshnessResult {
  readonly transport: Transport;
  readonly samples: number;
  readonly pollIntervalMs: number;
  /** From the 200 received to the request counted in GET /usage. */
  readonly visibleMs: Summary;
}

export interface BenchSettings {
  readonly profile: string;
  readonly keys: number;
  readonly accounts: number;
  readonly zipfS: number;
  readonly connections: number;
  readonly durationSec: number;
  readonly warmupSec: number;
  readonly rounds: number;
  readonly sequentialRequests: number;
  /** Requests through each Tollgate pipeline for the write amplification run. */
  readonly writeEvents: number;
  /** The same for the baseline, whose counts per request do not depend on the volume. */
  readonly baselineWriteEvents: number;
  readonly freshnessSamples: number;
  readonly pollIntervalMs: number;
  /** CPU rows: each measured round runs as many operations as fill this, at least cpuMinIterations. */
  readonly cpuRoundMs: number;
  readonly cpuMinIterations: number;
  readonly cpuRounds: number;
  /** The sustained load phase, per transport, one after the other (wrk). */
  readonly sustained: {
    readonly durationSec: number;
    readonly connections: number;
    readonly threads: number;
    readonly keys: number;
    readonly accounts: number;
    /** Well-formed keys (valid checksum) that exist nowhere: key-api answers 401 unknown_key. */
    readonly bogusKeys: number;
    readonly bogusShare: number;
    readonly timeoutSec: number;
  };
  /** Events published straight to each transport at these rates (events a second, for so long). */
  readonly paced: {
    readonly keys: number;
    readonly accounts: number;
    readonly zipfS: number;
    readonly runs: ReadonlyArray<{ readonly rate: number; readonly durationSec: number }>;
    /**
     * More SQS runs with another ledger flush profile than the default (TOLLGATE_LEDGER_FLUSH): what
     * each profile costs at a rate, beside the default's run at it.
     */
    readonly ledgerProfiles?: ReadonlyArray<{
      readonly rate: number;
      readonly durationSec: number;
      readonly ledgerFlush: string;
    }>;
  };
  /** The bare PutRecord loop's length (its concurrency is the sustained phase's connections). */
  readonly publishCheckSec: number;
}

export interface BenchResults {
  readonly version: 2;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationSec: number;
  readonly machine: MachineInfo;
  readonly settings: BenchSettings;
  readonly cpu: CpuResults;
  readonly http: Record<Target, HttpTargetResult>;
  readonly writes: Record<Target, WriteRun>;
  readonly freshness: Record<Transport, FreshnessResult>;
  readonly sustained: Record<Transport, SustainedRun>;
  /** Per transport, one run per rate, lowest rate first. */
  readonly paced: Record<Transport, PacedRun[]>;
  readonly publishCheck: PublishCheck;
  readonly exactChecks: ExactCheck[];
  /** Every exactness check passed, and every phase's own (sustained, paced). */
  readonly exact: boolean;
  /** Per transport: every check of it passed, per key and per account, in every phase. */
  readonly exactByTransport: Record<Transport, boolean>;
  readonly loadAverageAtEnd: number[];
}
