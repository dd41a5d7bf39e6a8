import { DEFAULT_ACCEPTANCE_WINDOW } from './config';
import { usageQueue } from './resources';

/**
 * How long usage waits for metering, derived from the late window metering is configured with
 * (TOLLGATE_LATE_WINDOW_MS): an event that cannot be counted yet (DynamoDB down) is delivered
 * again and again until it nears the late window, and is kept (queue, stream, dead-letter queue)
 * at least until the window has closed on it. The CDK stack and the local stack derive their
 * settings here, so `npm start` behaves like AWS; tests shorten them by passing a shorter window.
 */
export interface UsageRedelivery {
  /** The late window these settings serve, ms. */
  readonly lateWindowMs: number;
  /**
   * Time left to an operator to redrive what was given up on (the dead-letter queue) before the
   * late window refuses it: a quarter of the window, at most 6 hours.
   */
  readonly redriveMarginMs: number;
  readonly queue: {
    /**
     * As usageQueue (six times metering's timeout on AWS), longer only for a window SQS's 1,000
     * receives cannot span at that pace.
     */
    readonly visibilityTimeoutSeconds: number;
    /**
     * Receives before SQS moves a message to the dead-letter queue: one every visibility timeout
     * until the late window minus the redrive margin (SQS takes at most 1,000).
     */
    readonly maxReceiveCount: number;
    /** The late window plus a day (SQS keeps a message at most 14 days). */
    readonly retentionSeconds: number;
  };
  readonly deadLetter: {
    /**
     * SQS keeps a dead-lettered message's first enqueue time, so the dead-letter queue holds the
     * most SQS allows (14 days), never less than the late window plus a day.
     */
    readonly retentionSeconds: number;
  };
  readonly stream: {
    /** -1: the event source mapping retries until the record's age is `maxRecordAgeSeconds`. */
    readonly retryAttempts: -1;
    /** The late window minus the redrive margin (60 s to 7 days, the event source mapping's range). */
    readonly maxRecordAgeSeconds: number;
    /** The late window plus a day, in whole hours: the redrive reads given-up records back from here. */
    readonly retentionHours: number;
  };
}

/** The longest late window these settings can serve: Lambda's longest MaximumRecordAgeInSeconds. */
export const MAX_LATE_WINDOW_MS = 7 * 24 * 3600_000;
const MAX_SQS_RETENTION_SECONDS = 14 * 24 * 3600;
const MAX_RECEIVE_COUNT = 1000;
const MIN_RECORD_AGE_SECONDS = 60;

/**
 * The redelivery settings for a late window. Throws for a window the transports cannot serve
 * (shorter than two minutes, or longer than 7 days).
 */
export function usageRedelivery(
  lateWindowMs: number = DEFAULT_ACCEPTANCE_WINDOW.lateMs,
  visibilityTimeoutSeconds: number = usageQueue.visibilityTimeoutSeconds,
): UsageRedelivery {
  if (!Number.isFinite(lateWindowMs) || lateWindowMs < 2 * MIN_RECORD_AGE_SECONDS * 1000) {
    throw new RangeError(
      `a late window of ${lateWindowMs} ms is shorter than the 2 minutes redelivery needs`,
    );
  }
  if (lateWindowMs > MAX_LATE_WINDOW_MS) {
    throw new RangeError(
      `a late window of ${lateWindowMs} ms is longer than 7 days, the longest a Kinesis event source retries`,
    );
  }
  const redriveMarginMs = Math.min(6 * 3600_000, Math.floor(lateWindowMs / 4));
  const waitSeconds = Math.floor((lateWindowMs - redriveMarginMs) / 1000);
  const keptSeconds = Math.ceil(lateWindowMs / 1000) + 24 * 3600;
  // SQS counts at most 1,000 receives: a window longer than that many visibility timeouts (50 h at
  // 180 s) spaces the deliveries out instead of giving up early.
  const visibility = Math.max(visibilityTimeoutSeconds, Math.ceil(waitSeconds / MAX_RECEIVE_COUNT));
  return {
    lateWindowMs,
    redriveMarginMs,
    queue: {
      visibilityTimeoutSeconds: visibility,
      maxReceiveCount: Math.max(1, Math.min(MAX_RECEIVE_COUNT, Math.floor(waitSeconds / visibility))),
      retentionSeconds: Math.min(MAX_SQS_RETENTION_SECONDS, keptSeconds),
    },
    deadLetter: { retentionSeconds: MAX_SQS_RETENTION_SECONDS },
    stream: {
      retryAttempts: -1,
      maxRecordAgeSeconds: Math.max(MIN_RECORD_AGE_SECONDS, waitSeconds),
      retentionHours: Math.ceil(keptSeconds / 3600),
    },
  };
}
