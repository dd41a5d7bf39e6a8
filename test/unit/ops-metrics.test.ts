import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { operationsDefinition } from '../../contracts/dashboard';
import { KeyApiMetric, MeteringMetric, SERVICE_NAMES } from '../../contracts/metric-names';
import { recordBacklog } from '../../infra/local/ops/invocations';
import { evaluateMath } from '../../infra/local/ops/metric-math';
import {
  awsMetricKey,
  computeStatistic,
  MetricStore,
  serviceMetricKey,
} from '../../infra/local/ops/metric-store';
import { opsSnapshot } from '../../infra/local/ops/snapshot';

// The local ops page's arithmetic: what the functions record, kept for a bounded while, and the
// dashboard definition's statistics, math and alarm states computed from it as CloudWatch would.

const MINUTE = 60_000;

function clockAt(start: number) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('the metric store', () => {
  it('keeps what a composition records under its service, with the statistics of the definition', () => {
    const clock = clockAt(1_000_000);
    const store = new MetricStore({ now: clock.now });
    const keyApi = store.forService(SERVICE_NAMES.keyApi);
    for (const value of [10, 20, 30, 40, 100])
      keyApi.addMetric(KeyApiMetric.publishLatency, MetricUnit.Milliseconds, value);
    const key = serviceMetricKey(SERVICE_NAMES.keyApi, KeyApiMetric.publishLatency);
    const window = [clock.now() - 5 * MINUTE, clock.now() + 1] as const;
    expect(store.statistic(key, 'Sum', ...window)).toBe(200);
    expect(store.statistic(key, 'Average', ...window)).toBe(40);
    expect(store.statistic(key, 'Maximum', ...window)).toBe(100);
    expect(store.statistic(key, 'p50', ...window)).toBe(30);
    expect(store.statistic(key, 'p99', ...window)).toBe(100);
    // Another service's metric of the same name is another metric.
    expect(
      store.statistic(
        serviceMetricKey(SERVICE_NAMES.exampleApi, KeyApiMetric.publishLatency),
        'Sum',
        ...window,
      ),
    ).toBeUndefined();
  });

  it('forgets points older than its retention, and keeps sums exact at any rate with a bounded sample', () => {
    const clock = clockAt(0);
    const store = new MetricStore({ now: clock.now, retentionMs: 10 * MINUTE, samplesPerSecond: 50 });
    const key = serviceMetricKey(SERVICE_NAMES.metering, MeteringMetric.eventsCounted);
    for (let i = 0; i < 20; i++) {
      store.record(key, 1);
      clock.advance(MINUTE);
    }
    // Points of the last ten minutes only (the latest at 19 min: 9 min to 19 min).
    expect(store.size(key)).toBe(11);
    // 12,000 in one second: counted exactly, sampled for the percentiles.
    for (let i = 1; i <= 12_000; i++) store.record(key, i);
    const second = [clock.now(), clock.now() + 1_000] as const;
    expect(store.window(key, ...second)).toMatchObject({
      count: 12_000,
      sum: (12_000 * 12_001) / 2,
      max: 12_000,
    });
    expect(store.window(key, ...second).samples).toHaveLength(50);
    const p50 = store.statistic(key, 'p50', ...second) ?? 0;
    expect(p50).toBeGreaterThan(1_000);
    expect(p50).toBeLessThan(11_000);
  });

  it('computes percentiles by nearest rank and has no value without data', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    const aggregate = { count: 100, sum: 5050, max: 100, samples };
    expect(computeStatistic(aggregate, 'p50')).toBe(50);
    expect(computeStatistic(aggregate, 'p99')).toBe(99);
    expect(computeStatistic({ count: 0, sum: 0, max: 0, samples: [] }, 'Sum')).toBeUndefined();
  });
});

describe('the backlog as the consumer sees it', () => {
  it("records SQS's age of the oldest message and Kinesis's records in and iterator age per batch", () => {
    const now = 1_000_000_000;
    const store = new MetricStore({ now: () => now });
    const window = [now - 1_000, now + 1_000] as const;
    recordBacklog(
      store,
      {
        Records: [3_000, 500].map((ago) => ({
          eventSource: 'aws:sqs',
          attributes: { SentTimestamp: `${now - ago}` },
        })),
      },
      now,
    );
    const queue = { type: 'queue', role: 'usage' } as const;
    expect(store.statistic(awsMetricKey(queue, 'ApproximateAgeOfOldestMessage'), 'Maximum', ...window)).toBe(
      3,
    );
    recordBacklog(
      store,
      {
        Records: [4, 2].map((ago) => ({
          eventSource: 'aws:kinesis',
          kinesis: { approximateArrivalTimestamp: now / 1000 - ago },
        })),
      },
      now,
    );
    expect(
      store.statistic(awsMetricKey({ type: 'stream', role: 'usage' }, 'IncomingRecords'), 'Sum', ...window),
    ).toBe(2);
    const iteratorAge = awsMetricKey({ type: 'function', role: 'metering' }, 'IteratorAge');
    expect(store.statistic(iteratorAge, 'Maximum', ...window)).toBe(2_000);
  });
});

describe('metric math', () => {
  it('evaluates the expressions of the definition', () => {
    expect(
      evaluateMath('100 * (hits + stale) / (hits + stale + misses)', { hits: 6, stale: 2, misses: 2 }),
    ).toBe(80);
    const rate = 'IF(requests > 0, 100 * (target5xx + userErrors + internalErrors) / requests, 0)';
    expect(
      evaluateMath(rate, { requests: 200, target5xx: 1, userErrors: 1, internalErrors: undefined }),
    ).toBe(1);
    expect(evaluateMath(rate, { requests: 0, target5xx: 0, userErrors: 0, internalErrors: 0 })).toBe(0);
    expect(
      evaluateMath('unknownKey + accountMismatch', { unknownKey: undefined, accountMismatch: undefined }),
    ).toBeUndefined();
    expect(evaluateMath('a / b', { a: 1, b: 0 })).toBeUndefined();
    expect(() => evaluateMath('a +', { a: 1 })).toThrow('metric math');
  });
});

describe('the ops snapshot', () => {
  const definition = operationsDefinition({
    stage: 'local',
    transport: 'sqs',
    ownerApiTargetGroup: true,
    billing: true,
  });

  it('shows every widget of the definition, with a figure per series', () => {
    const snapshot = opsSnapshot(definition, new MetricStore());
    const graphs = definition.rows.flat();
    expect(snapshot.widgets.map((w) => w.id)).toEqual(graphs.map((w) => w.id));
    for (const widget of graphs) {
      const shown = snapshot.widgets.find((w) => w.id === widget.id);
      expect(shown?.series.length).toBe(
        widget.type === 'graph' ? widget.left.length + widget.right.length : 0,
      );
    }
    expect(snapshot.alarms.map((a) => a.key)).toEqual(Object.keys(definition.alarms));
  });

  it('turns an alarm to ALARM when its last evaluation periods all breach, and back to OK', () => {
    const clock = clockAt(10 * 60 * MINUTE);
    const store = new MetricStore({ now: clock.now });
    const state = (name: string) => opsSnapshot(definition, store).alarms.find((a) => a.key === name)?.state;
    expect(state('keyApiInternalErrors')).toBe('OK');
    store.forService(SERVICE_NAMES.keyApi).addMetric(KeyApiMetric.internalErrors, MetricUnit.Count, 1);
    expect(state('keyApiInternalErrors')).toBe('ALARM');

    // The 5xx rate alarms over two periods: one bad period is not enough.
    const group = { type: 'targetGroup', role: 'keyApi' } as const;
    const answer = (status: number) => {
      store.record(awsMetricKey(group, 'RequestCount'), 1);
      if (status >= 500) store.record(awsMetricKey(group, 'HTTPCode_Target_5XX_Count'), 1);
    };
    for (let i = 0; i < 10; i++) answer(i < 5 ? 500 : 200);
    expect(state('keyApi5xx')).toBe('OK');
    clock.advance(5 * MINUTE + 1_000);
    for (let i = 0; i < 10; i++) answer(i < 5 ? 500 : 200);
    expect(state('keyApi5xx')).toBe('ALARM');
    clock.advance(6 * MINUTE);
    for (let i = 0; i < 10; i++) answer(200);
    expect(state('keyApi5xx')).toBe('OK');
    expect(state('keyApiInternalErrors')).toBe('OK');
  });
});
