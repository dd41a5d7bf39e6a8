import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ALBEvent } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../contracts/config';
import { KEY_API_FAILURE_METRICS, KeyApiMetric } from '../../contracts/metric-names';
import { generateApiKey } from '../../services/accounts/api-key';
import { BufferedMetrics } from '../../services/gate/buffered-metrics';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';

/** One EMF line as CloudWatch reads it: the `_aws` envelope plus one key per metric and dimension. */
interface EmfLine {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{ Namespace: string; Metrics: Array<{ Name: string; Unit: string }> }>;
  };
  [key: string]: unknown;
}

const T0 = Date.parse('2026-11-21T12:00:00Z');
const INTERVAL_MS = 60_000;

/**
 * Everything Powertools writes to stdout, parsed: EMF lines go to the real process.stdout (its own
 * Console), which is what Lambda ingests.
 */
let written: EmfLine[];

beforeEach(() => {
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.stubEnv('POWERTOOLS_DEV', '');
  written = [];
  const write = process.stdout.write.bind(process.stdout);
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = chunk.toString();
    if (!text.includes('"_aws"')) return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    for (const line of text.split('\n').filter((l) => l.trim() !== '')) written.push(JSON.parse(line));
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

function harness(flushIntervalMs = INTERVAL_MS) {
  let now = T0;
  const metrics = new BufferedMetrics({
    metrics: new Metrics({ namespace: 'Test', serviceName: 'key-api' }),
    flushIntervalMs,
    flushAtOnce: KEY_API_FAILURE_METRICS,
    clock: { now: () => new Date(now) },
  });
  return {
    metrics,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const namesIn = (line: EmfLine | undefined) =>
  line?._aws.CloudWatchMetrics[0]?.Metrics.map((m) => m.Name).sort() ?? [];

describe('BufferedMetrics', () => {
  it('sums routine counts across invocations and writes nothing before the interval', () => {
    const { metrics, advance } = harness();
    for (let invocation = 0; invocation < 50; invocation++) {
      metrics.addMetric(KeyApiMetric.checks.accepted, MetricUnit.Count, 1);
      metrics.addMetric(KeyApiMetric.cacheHits, MetricUnit.Count, 1);
      expect(metrics.publishIfDue()).toBe(false);
      advance(1_000);
    }
    expect(written).toEqual([]);

    advance(INTERVAL_MS - 50 * 1_000);
    metrics.addMetric(KeyApiMetric.checks.accepted, MetricUnit.Count, 1);
    expect(metrics.publishIfDue()).toBe(true);
    expect(written).toHaveLength(1);
    const [line] = written;
    // One value per metric: the sum, not an array of 1s.
    expect(line?.[KeyApiMetric.checks.accepted]).toBe(51);
    expect(line?.[KeyApiMetric.cacheHits]).toBe(50);
    expect(line?.service).toBe('key-api');
    expect(line?._aws.CloudWatchMetrics[0]?.Namespace).toBe('Test');
    expect(line?._aws.CloudWatchMetrics[0]?.Metrics).toContainEqual({
      Name: KeyApiMetric.checks.accepted,
      Unit: MetricUnit.Count,
    });
    // Stamped with the window's first metric, so late writes still land in their own minute.
    expect(line?._aws.Timestamp).toBe(T0);

    // The buffer starts over: nothing more until the next window is due.
    metrics.addMetric(KeyApiMetric.checks.accepted, MetricUnit.Count, 1);
    expect(metrics.publishIfDue()).toBe(false);
    expect(written).toHaveLength(1);
  });

  it('writes a failure metric at the end of its invocation, with the counts buffered so far', () => {
    const { metrics, advance } = harness();
    for (let i = 0; i < 3; i++) {
      metrics.addMetric(KeyApiMetric.checks.accepted, MetricUnit.Count, 1);
      metrics.publishIfDue();
      advance(100);
    }
    expect(written).toEqual([]);

    metrics.addMetric(KeyApiMetric.publishFailures, MetricUnit.Count, 1);
    expect(metrics.publishIfDue()).toBe(true);
    expect(written).toHaveLength(1);
    expect(written[0]?.[KeyApiMetric.publishFailures]).toBe(1);
    expect(written[0]?.[KeyApiMetric.checks.accepted]).toBe(3);
    // Stamped when the failure happened, not when the window opened.
    expect(written[0]?._aws.Timestamp).toBe(T0 + 300);

    for (const name of KEY_API_FAILURE_METRICS) {
      metrics.addMetric(name, MetricUnit.Count, 1);
      metrics.publishIfDue();
    }
    expect(written.map(namesIn)).toEqual([
      [KeyApiMetric.checks.accepted, KeyApiMetric.publishFailures].sort(),
      ...KEY_API_FAILURE_METRICS.map((name) => [name]),
    ]);
  });

  it('keeps every value of a distribution, and writes once one EMF line is full', () => {
    const { metrics } = harness();
    for (let i = 1; i <= 99; i++) {
      metrics.addMetric(KeyApiMetric.publishLatency, MetricUnit.Milliseconds, i);
      metrics.addMetric(KeyApiMetric.checks.accepted, MetricUnit.Count, 1);
      metrics.publishIfDue();
    }
    expect(written).toEqual([]);
    metrics.addMetric(KeyApiMetric.publishLatency, MetricUnit.Milliseconds, 100);
    expect(metrics.publishIfDue()).toBe(true);
    expect(written).toHaveLength(1);
    expect(written[0]?.[KeyApiMetric.publishLatency]).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(written[0]?.[KeyApiMetric.checks.accepted]).toBe(99);
  });

  it('writes at the end of every invocation with an interval of 0, as Powertools alone would', () => {
    const { metrics } = harness(0);
    expect(metrics.publishIfDue()).toBe(false); // nothing recorded: no line, no warning
    metrics.addMetric(KeyApiMetric.checks.missing, MetricUnit.Count, 1);
    expect(metrics.publishIfDue()).toBe(true);
    expect(written.map(namesIn)).toEqual([[KeyApiMetric.checks.missing]]);
  });

  it('refuses a bad value when it is recorded, not in a later invocation', () => {
    const { metrics, advance } = harness();
    expect(() => metrics.addMetric('Latency', MetricUnit.Milliseconds, Number.NaN)).toThrow(RangeError);
    metrics.addMetric('Latency', MetricUnit.Milliseconds, 1);
    expect(() => metrics.addMetric('Latency', MetricUnit.Count, 1)).toThrow(/Milliseconds/);
    advance(INTERVAL_MS);
    expect(metrics.publishIfDue()).toBe(true);
    expect(written[0]?.Latency).toBe(1);
  });
});

describe('key-api with buffered metrics (composed by composeKeyApi, as handler.ts does)', () => {
  function keyApi() {
    const h = harness();
    const { key, keyHash } = generateApiKey('tg');
    let publishFails = false;
    const now = () => new Date(T0);
    const { handler: handle } = composeKeyApi(
      loadKeyApiConfig({
        [ENV.accountsTable]: 'accounts',
        [ENV.keysTable]: 'keys',
        [ENV.usageTable]: 'usage',
        [ENV.plansTable]: 'plans',
        [ENV.usageQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/usage',
      }),
      {
        lookup: async (hash) =>
          hash === keyHash
            ? { found: true, record: { accountId: 'acc_1', keyId: 'key_1', status: 'active' } }
            : { found: false },
        publisher: {
          publish: async () => {
            if (publishFails) throw new Error('queue down');
          },
        },
        readKeyDayCount: async () => 0,
        terms: async () => ({ found: false }),
        clock: { now },
        logger: new Logger({ serviceName: 'key-api-test', logLevel: 'SILENT' }),
        // Asked at the end of every invocation whether to write (endInvocation → publishIfDue).
        metrics: h.metrics,
      },
    );
    const event: ALBEvent = {
      requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:local:0:targetgroup/k/0' } },
      httpMethod: 'GET',
      path: '/',
      headers: { 'x-api-key': key },
      body: null,
      isBase64Encoded: false,
    };
    const handler = () => handle(event);
    return {
      ...h,
      handler,
      failPublishing: () => {
        publishFails = true;
      },
    };
  }

  it('writes one line for many requests, and a failed publish at once', async () => {
    const api = keyApi();
    for (let i = 0; i < 20; i++) {
      expect((await api.handler()).statusCode).toBe(200);
      api.advance(1_000);
    }
    expect(written).toEqual([]);

    api.failPublishing();
    expect((await api.handler()).statusCode).toBe(503);
    expect(written).toHaveLength(1);
    const [line] = written;
    expect(line?.[KeyApiMetric.checks.accepted]).toBe(20);
    expect(line?.[KeyApiMetric.publishFailures]).toBe(1);
    expect(line?.[KeyApiMetric.cacheHits]).toBe(20);
    expect(line?.[KeyApiMetric.cacheMisses]).toBe(1);
    expect(line?.[KeyApiMetric.publishLatency]).toHaveLength(21);
  });
});
