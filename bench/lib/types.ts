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
  readonly sdk: Counts;
}

export interface ConsumerSnapshot {
  readonly sdk: Counts;
  readonly invocations: number;
  readonly records: number;
  readonly failed: number;
  /** Since the last resetSamples. */
  readonly durationMs: Summary;
  /** Event time (minted by key-api) to its batch committed, per counted event, since resetSamples. */
  readonly lagMs: Summary;
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
}

export interface CpuResults {
  readonly rows: CpuRow[];
  /** CloudWatch-billed bytes of key-api's metrics per invocation on Lambda, amortized over its buffered flushes. */
  readonly emfLineBytes: number;
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

/** "Every 200 is counted once": the counted usage against the 200s the services answered. */
export interface ExactCheck {
  readonly phase: string;
  readonly answered200: number;
  readonly counted: number;
  readonly ok: boolean;
  /** How long after the load stopped the counts matched. */
  readonly settledMs: number;
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
  /** Every key's own count moved by exactly its 200s (GET /keys); not applicable to the baseline. */
  readonly perKeyExact: boolean | null;
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
}

export interface BenchResults {
  readonly version: 1;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationSec: number;
  readonly machine: MachineInfo;
  readonly settings: BenchSettings;
  readonly cpu: CpuResults;
  readonly http: Record<Target, HttpTargetResult>;
  readonly writes: Record<Target, WriteRun>;
  readonly freshness: Record<Transport, FreshnessResult>;
  readonly exactChecks: ExactCheck[];
  /** Every exactness check passed. */
  readonly exact: boolean;
  readonly loadAverageAtEnd: number[];
}
