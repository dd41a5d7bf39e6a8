import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { z } from 'zod';
import { systemClock } from '../shared/clock';
import { loadConfig } from '../shared/config';
import { createDocumentClient } from '../shared/dynamodb';
import { METRICS_NAMESPACE, SERVICE_NAMES } from '../shared/metric-names';
import { UsageStore } from '../shared/usage-store';
import { DEFAULT_WINDOW } from './batch';
import { consumeBatch } from './consumer';
import { SqsDeadLetterSink } from './dead-letter';
import { KinesisLookBack } from './look-back';
import { inboundRecords } from './records';

const config = loadConfig(
  SERVICE_NAMES.metering,
  z.object({
    TOLLGATE_USAGE_TABLE: z.string().min(3),
    TOLLGATE_USAGE_DLQ_URL: z.url(),
    TOLLGATE_TRANSPORT: z.enum(['sqs', 'kinesis']).default('sqs'),
    TOLLGATE_LATE_WINDOW_MS: z.coerce.number().int().positive().default(DEFAULT_WINDOW.lateMs),
    TOLLGATE_FUTURE_WINDOW_MS: z.coerce.number().int().nonnegative().default(DEFAULT_WINDOW.futureMs),
  }),
);

const logger = new Logger({ serviceName: SERVICE_NAMES.metering });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.metering });
const window = { lateMs: config.TOLLGATE_LATE_WINDOW_MS, futureMs: config.TOLLGATE_FUTURE_WINDOW_MS };
const usage = new UsageStore({
  client: createDocumentClient(),
  table: config.TOLLGATE_USAGE_TABLE,
  // A mark must outlive every copy of its event that could still be accepted: the late window,
  // plus a day of margin for clock skew and slow redrives.
  markTtlMs: window.lateMs + 24 * 3600_000,
});
const deadLetters = new SqsDeadLetterSink({
  sqs: new SQSClient({}),
  queueUrl: config.TOLLGATE_USAGE_DLQ_URL,
  transport: config.TOLLGATE_TRANSPORT,
});

// Built whatever TOLLGATE_TRANSPORT says (it makes no call until a Kinesis batch has a resent
// copy): the local stack feeds one handler from both transports.
const lookBack = new KinesisLookBack({
  kinesis: new KinesisClient({}),
  onGiveUp: (query) =>
    logger.warn('first copy of a resent event not reached; counting the copy', { ...query }),
});

/**
 * SQS or Kinesis batch in, partial batch response out (the event source mapping must have
 * ReportBatchItemFailures). Throwing would fail the whole batch; only a batch that is not an
 * SQS or Kinesis event at all does that.
 */
export async function handler(event: unknown): Promise<SQSBatchResponse> {
  try {
    const records = inboundRecords(event);
    const outcome = await consumeBatch(records, {
      usage,
      deadLetters,
      clock: systemClock,
      logger,
      metrics,
      window,
      lookBack,
    });
    logger.debug('batch consumed', { ...outcome, failed: outcome.failedRecordIds.length });
    return { batchItemFailures: outcome.failedRecordIds.map((itemIdentifier) => ({ itemIdentifier })) };
  } finally {
    metrics.publishStoredMetrics();
  }
}
