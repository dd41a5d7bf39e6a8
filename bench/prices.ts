/**
 * The one price table of the cost model (`npm run cost`). List prices, us-east-1, on-demand, free
 * tiers left out, as published on AWS's public pricing pages (named per entry) and recalled as of
 * 2025; they were NOT re-checked online when this file was written (2026-11-22). Check them against
 * the pages before relying on a figure; change them here only, with the date.
 */
export interface Tier {
  /** Requests per month up to which this price applies (cumulative). */
  readonly upTo: number;
  readonly perMillion: number;
}

export const PRICES = {
  asOf: 'list prices as of mid-2025 (recalled from the pages; not re-checked online on 2026-11-22)',
  region: 'us-east-1',
  hoursPerMonth: 730,

  /** Elastic Load Balancing pricing page, Application Load Balancer. */
  alb: {
    perHour: 0.0225,
    perLcuHour: 0.008,
    // One LCU per hour buys the most of any one of these; the highest dimension is billed.
    lcu: {
      newConnectionsPerSecond: 25,
      activeConnectionsPerMinute: 3_000,
      /** For Lambda targets (1 GB per hour for instance and IP targets). */
      lambdaProcessedGbPerHour: 0.4,
      ruleEvaluationsPerSecond: 1_000,
      freeRules: 10,
    },
  },

  /** Amazon API Gateway pricing page: REST APIs and HTTP APIs, requests per month. */
  apiGateway: {
    rest: [
      { upTo: 333e6, perMillion: 3.5 },
      { upTo: 1e9, perMillion: 2.8 },
      { upTo: 20e9, perMillion: 2.38 },
      { upTo: Number.POSITIVE_INFINITY, perMillion: 1.51 },
    ] satisfies Tier[],
    http: [
      { upTo: 300e6, perMillion: 1.0 },
      { upTo: Number.POSITIVE_INFINITY, perMillion: 0.9 },
    ] satisfies Tier[],
  },

  /** AWS Lambda pricing page: requests, and duration per GB-second (first tier). */
  lambda: {
    perMillionRequests: 0.2,
    perGbSecond: { x86_64: 0.0000166667, arm64: 0.0000133334 },
  },

  /** Amazon SQS pricing page: standard queue requests (every 64 KB of a payload is a request). */
  sqs: { perMillionRequests: 0.4 },

  /** Amazon Kinesis Data Streams pricing page, provisioned mode. */
  kinesis: {
    perShardHour: 0.015,
    /** A PUT payload unit is 25 KB of one record. */
    perMillionPutPayloadUnits: 0.014,
    /** Per shard: 1,000 records or 1 MB a second in. */
    shardRecordsPerSecond: 1_000,
    shardBytesPerSecond: 1_000_000,
  },

  /** Amazon DynamoDB pricing page, on-demand capacity (after the November 2024 reduction). */
  dynamodb: {
    perMillionWriteUnits: 0.625,
    perMillionReadUnits: 0.125,
    perGbMonthStorage: 0.25,
    /** Point-in-time recovery (continuous backups), which the CDK stack turns on. */
    perGbMonthPitr: 0.2,
    /** DynamoDB adds this much to every item's size for storage. */
    itemOverheadBytes: 100,
  },

  /** Amazon CloudWatch pricing page: Logs, standard ingestion. */
  cloudWatchLogs: {
    perGbIngested: 0.5,
    /** CloudWatch Logs bills each log event's message plus this much. */
    eventOverheadBytes: 26,
  },
} as const;

export type Prices = typeof PRICES;
