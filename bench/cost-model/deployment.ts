import { DEFAULT_WINDOW } from '../../services/metering/batch';

/** How each design is deployed: Tollgate as infra/cdk builds it, the baseline as the article's template. */
export const DEPLOYMENT = {
  /**
   * infra/cdk/tollgate-stack.ts: key-api 512 MB; metering UsageTransport.CONSUMER_MEMORY_MB (1 GB,
   * infra/cdk/constructs/usage-transport.ts: sized for a batch of 10,000); arm64
   * (constructs/tollgate-function.ts). bench/ may not import infra/cdk: keep these equal by hand.
   */
  tollgate: {
    keyApi: { memoryMb: 512, arch: 'arm64' },
    metering: { memoryMb: 1024, arch: 'arm64' },
    /**
     * constructs/tollgate-function.ts: JSON logs, system log level WARN, so Lambda's START, END and
     * REPORT lines are not ingested (test/infra asserts it for every function).
     */
    platformLogLines: false,
  },
  /** The article's Test API: MemorySize 256, python3.8 (x86_64, the default architecture), text logs. */
  baseline: { memoryMb: 256, arch: 'x86_64', platformLogLines: true },
} as const;

/**
 * How bench/proc/cpu.ts measures key-api's EMF bytes per invocation: the real handler and its
 * buffered metrics at this steady rate per warm container, on a simulated clock, for this long
 * (several flush intervals). The count line is written once per flush interval whatever the rate,
 * so fewer requests per container mean more of its bytes per request; the publish latencies (one
 * value per accepted request, in lines of 100) cost the same per request at any rate.
 */
export const EMF_SIMULATION = {
  requestsPerSecondPerContainer: 10,
  seconds: 600,
  /** Publish latencies spread over this range (in-region SQS or Kinesis): their digits fill the lines. */
  publishMs: { min: 5, max: 30 },
} as const;

export const ASSUMPTIONS = {
  /** Keep-alive clients: requests per new connection (drives the ALB's new-connection LCUs). */
  requestsPerConnection: 100,
  /** Kinesis shards sized to this share of the 1,000 records/s per-shard write limit. */
  kinesisShardUtilisation: 0.8,
  /**
   * START, END and REPORT lines Lambda writes per invocation in text format at the default system
   * log level (about 270 bytes, the documented format): the baseline's. Tollgate filters them out.
   */
  lambdaPlatformLogBytes: 270,
  lambdaPlatformLogEvents: 3,
  /** Dedupe marks live the late window plus a day (services/metering/compose.ts), then TTL removes them. */
  markTtlHours: DEFAULT_WINDOW.lateMs / 3_600_000 + 24,
} as const;

export interface Assumptions {
  readonly requestsPerConnection: number;
  readonly kinesisShardUtilisation: number;
  readonly lambdaPlatformLogBytes: number;
  readonly lambdaPlatformLogEvents: number;
  readonly markTtlHours: number;
}
