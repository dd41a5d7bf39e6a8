import type { ALBResult } from 'aws-lambda';
import type { FunctionRole } from '../../../contracts/dashboard';
import type { AlbHandler } from '../alb-adapter';
import { awsMetricKey, type MetricStore } from './metric-store';

/**
 * What CloudWatch measures of a function and its load balancer without the function's help
 * (AWS/Lambda Duration and Errors, AWS/ApplicationELB answers), measured around the handler where
 * the local stack invokes it, into the ops page's store.
 */

/** The handler, timed: each invocation's Duration, and an Error when it throws. */
export function timedInvocations<E, R>(
  store: MetricStore,
  role: FunctionRole,
  handler: (event: E) => Promise<R>,
): (event: E) => Promise<R> {
  const fn = { type: 'function', role } as const;
  return async (event) => {
    const started = performance.now();
    try {
      return await handler(event);
    } catch (error) {
      store.record(awsMetricKey(fn, 'Errors'), 1);
      throw error;
    } finally {
      store.record(awsMetricKey(fn, 'Duration'), performance.now() - started);
    }
  };
}

/** The parts of an SQS or Kinesis event the backlog figures read. */
interface BatchRecord {
  readonly eventSource?: string;
  readonly attributes?: { readonly SentTimestamp?: string };
  readonly kinesis?: { readonly approximateArrivalTimestamp?: number };
}

/**
 * What CloudWatch says of the usage backlog, as the consumer sees each batch: SQS's age of the
 * oldest message (seconds; the oldest of the batch when it is read) and, on Kinesis, the records
 * that came in and metering's IteratorAge (milliseconds; its newest record's wait, as Lambda
 * reports it).
 */
export function recordBacklog(store: MetricStore, event: unknown, now = Date.now()): void {
  const records = (event as { Records?: readonly BatchRecord[] } | undefined)?.Records;
  if (!Array.isArray(records) || records.length === 0) return;
  if (records[0]?.eventSource === 'aws:sqs') {
    const sent = records.map((r) => Number(r.attributes?.SentTimestamp)).filter(Number.isFinite);
    if (sent.length > 0) {
      const age = (now - Math.min(...sent)) / 1000;
      store.record(awsMetricKey({ type: 'queue', role: 'usage' }, 'ApproximateAgeOfOldestMessage'), age, now);
    }
  } else if (records[0]?.eventSource === 'aws:kinesis') {
    store.record(awsMetricKey({ type: 'stream', role: 'usage' }, 'IncomingRecords'), records.length, now);
    const arrived = records
      .map((r) => Number(r.kinesis?.approximateArrivalTimestamp) * 1000)
      .filter(Number.isFinite);
    if (arrived.length > 0) {
      const age = now - Math.max(...arrived);
      store.record(
        awsMetricKey({ type: 'function', role: 'metering' }, 'IteratorAge'),
        Math.max(0, age),
        now,
      );
    }
  }
}

/**
 * A Lambda target behind the load balancer: the function's figures, and the target group's and
 * the load balancer's count of requests and answers by class. A handler that throws is the ALB's
 * 502 (LambdaUserError on AWS).
 */
export function recordedAlbTarget(
  store: MetricStore,
  role: 'keyApi' | 'ownerApi',
  handler: AlbHandler,
): AlbHandler {
  const group = { type: 'targetGroup', role } as const;
  const alb = { type: 'loadBalancer' } as const;
  const count = (resource: typeof group | typeof alb, name: string) =>
    store.record(awsMetricKey(resource, name), 1);
  const timed = timedInvocations(store, role, handler);
  return async (event) => {
    count(group, 'RequestCount');
    count(alb, 'RequestCount');
    let result: ALBResult;
    try {
      result = await timed(event);
    } catch (error) {
      count(group, 'LambdaUserError');
      count(alb, 'HTTPCode_ELB_5XX_Count');
      throw error;
    }
    const status = result.statusCode;
    if (status >= 400 && status < 500) count(group, 'HTTPCode_Target_4XX_Count');
    if (status >= 500) count(group, 'HTTPCode_Target_5XX_Count');
    return result;
  };
}
