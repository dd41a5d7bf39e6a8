import { DEFAULT_METRICS_FLUSH_MS } from '../../contracts/config';
import { type BenchResults, TARGETS, type Target, type Transport } from '../lib/types';
import { PRICES, type Prices } from '../prices';
import { ASSUMPTIONS, type Assumptions, DEPLOYMENT, EMF_SIMULATION } from './deployment';
import { type MeasuredInputs, type MeteringPoint, meteringPoints } from './inputs';
import type { CostTable } from './monthly';
import type { OverheadTable } from './overhead';

export function usd(value: number | undefined): string {
  if (value === undefined) return '—';
  if (value === 0) return '$0';
  if (value >= 100) return `$${Math.round(value).toLocaleString('en-US')}`;
  if (value >= 1) return `$${value.toFixed(2)}`;
  if (value >= 0.01) return `$${value.toFixed(3)}`;
  return '<$0.01';
}

export function rate(rps: number | undefined): string {
  if (rps === undefined) return 'never (0.01 to 100,000 req/s)';
  const rounded = rps >= 10 ? Math.round(rps) : Math.round(rps * 10) / 10;
  return `${rounded.toLocaleString('en-US')} req/s`;
}

/** A Markdown table of one rate's costs. */
export function costTableMarkdown(table: CostTable): string {
  const lines = [
    `**${table.rps.toLocaleString('en-US')} req/s** (${(table.requestsPerMonth / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1 })} M requests a month)`,
    '',
    '| component | baseline (article) | Tollgate, SQS | Tollgate, Kinesis |',
    '| --- | ---: | ---: | ---: |',
    ...table.rows.map((row) => `| ${row.component} | ${TARGETS.map((t) => usd(row.cost[t])).join(' | ')} |`),
    `| **total a month (ALB)** | ${TARGETS.map((t) => `**${usd(table.total[t])}**`).join(' | ')} |`,
    `| total with API Gateway REST instead | ${TARGETS.map((t) => usd(table.totalWithApiGatewayRest[t])).join(' | ')} |`,
    `| total with API Gateway HTTP API instead | ${TARGETS.map((t) => usd(table.totalWithApiGatewayHttp[t])).join(' | ')} |`,
  ];
  return lines.join('\n');
}

/**
 * The measured inputs that do not depend on the rate (the key check's, and the write run's
 * figures for reference: metering's rows there are under a backlog, with full batches; the costs
 * take metering's figures at each rate from meteringPointsMarkdown's table).
 */
export function inputsMarkdown(inputs: Record<Target, MeasuredInputs>): string {
  const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : '—');
  const rows: Array<[string, (m: MeasuredInputs) => string]> = [
    ['bytes through the ALB per request', (m) => f(m.bytesPerRequest, 0)],
    ['key check handler, mean ms (1 request at a time)', (m) => f(m.handlerMs, 2)],
    [
      'DynamoDB write units per request (write run: a backlog, full batches)',
      (m) => f(m.writeUnitsPerRequest),
    ],
    ['DynamoDB read units per request', (m) => f(m.readUnitsPerRequest)],
    [
      'SQS billed requests per request (write run)',
      (m) => (m.target === 'sqs' ? f(m.sqsRequestsPerRequest) : '—'),
    ],
    [
      'Kinesis PUT payload units per request',
      (m) => (m.target === 'kinesis' ? f(m.kinesisPayloadUnitsPerRequest) : '—'),
    ],
    [
      'metering invocations per request (avg batch; write run)',
      (m) =>
        m.target === 'baseline' ? '—' : `${f(m.meteringInvocationsPerRequest, 4)} (${f(m.meteringBatch, 1)})`,
    ],
    [
      'metering handler, mean ms per batch (write run)',
      (m) => (m.target === 'baseline' ? '—' : f(m.meteringMs, 1)),
    ],
    ['dedupe mark item, bytes', (m) => (m.target === 'baseline' ? '—' : f(m.markItemBytes, 0))],
    [
      'key check EMF metrics per invocation, billed bytes (amortized)',
      (m) => (m.target === 'baseline' ? '—' : f(m.emfLineBytes, 1)),
    ],
    [
      'metering EMF line per batch, billed bytes',
      (m) => (m.target === 'baseline' ? '—' : f(m.meteringEmfLineBytes, 0)),
    ],
  ];
  return [
    '| measured input | baseline (article) | Tollgate, SQS | Tollgate, Kinesis |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(([name, value]) => `| ${name} | ${TARGETS.map((t) => value(inputs[t])).join(' | ')} |`),
  ].join('\n');
}

export function assumptionsMarkdown(assumptions: Assumptions = ASSUMPTIONS, prices: Prices = PRICES): string {
  return [
    `- Prices: ${prices.asOf}, ${prices.region}, on-demand, no free tiers (bench/prices.ts names each page). Check them before use.`,
    `- Deployment: Tollgate as infra/cdk builds it (key-api ${DEPLOYMENT.tollgate.keyApi.memoryMb} MB and metering ${DEPLOYMENT.tollgate.metering.memoryMb} MB, ${DEPLOYMENT.tollgate.keyApi.arch}); the baseline as the article's template (${DEPLOYMENT.baseline.memoryMb} MB, ${DEPLOYMENT.baseline.arch}). One ALB (${prices.hoursPerMonth} h a month) either way.`,
    `- ALB LCUs: the larger of new connections (clients keep connections alive for ${assumptions.requestsPerConnection} requests) and processed bytes (measured bytes per request, Lambda targets: ${prices.alb.lcu.lambdaProcessedGbPerHour} GB per LCU-hour); one rule, within the free ones.`,
    `- Kinesis: provisioned shards sized to ${Math.round(assumptions.kinesisShardUtilisation * 100)}% of the 1,000 records/s write limit of a shard; reading (GetRecords) is included in shard-hours.`,
    `- Dedupe marks are stored ${assumptions.markTtlHours} h (late window + a day), priced with PITR; TTL deletion itself is free (and can lag, so this is a floor).`,
    `- CloudWatch Logs, ingestion only, every log event billed with ${prices.cloudWatchLogs.eventOverheadBytes} bytes of overhead. The baseline (text logs) pays ${assumptions.lambdaPlatformLogBytes} bytes of START/END/REPORT per invocation; Tollgate's functions log JSON at system log level WARN (infra/cdk), so Lambda does not send those lines. Tollgate's key checks add their EMF metrics, measured in bytes per invocation amortized over the flushes: the real handler with its buffered metrics (counts summed into one line per ${DEFAULT_METRICS_FLUSH_MS / 1000} s, publish latencies of ${EMF_SIMULATION.publishMs.min}-${EMF_SIMULATION.publishMs.max} ms in lines of 100, failures written at once), every request accepted, ${EMF_SIMULATION.requestsPerSecondPerContainer} req/s per warm container for ${EMF_SIMULATION.seconds} s of simulated time; fewer requests per container mean more count lines per request. Metering writes one EMF line per batch (rebuilt with Powertools from its metric names).`,
    "- Lambda durations are the handlers' own times measured by the benchmark (key check: one request at a time; metering: per batch under load) against the local engines on a shared machine; in-region AWS calls take a few milliseconds, so treat the GB-s part as indicative.",
    "- Metering's figures (its DynamoDB write units, the consumer's SQS requests, invocations, handler time, batch size) depend on how full the batches are, so each rate is priced with the figures measured at that rate by the paced runs (events straight to the transport at 10, 100 and 1,000 a second, the local stack's event source settings: batches of up to 10,000 within a 1 s window); between measured rates they are interpolated on a log scale, outside them the nearest rate's are used (below the lowest rate batches are smaller still, so the figure is a floor there). On AWS the event source mapping cuts batches the same way (same batch size and window, infra/cdk), though its pollers are not the local ones. The key check's figures (reads, bytes, handler time) come from the HTTP and write runs and do not depend on the rate.",
    "- Metering overhead per million requests counts what counting costs apart from checking keys: the article's counter update (its measured write units; it is written in the request, so it has no other part), and Tollgate's metering writes, transport (SQS: key-api's send plus the consumer's receives that returned messages and its deletes; Kinesis: PUT units plus the shards' hours spread over the month's requests), metering Lambda requests and GB-s, and its EMF line per batch. The local SQS poller's empty receives are left out: Lambda's pollers long-poll, a few requests a minute each whatever the traffic.",
  ].join('\n');
}

/** Dollars per million requests: more digits than usd(), these are small. */
export function usdPerMillion(value: number | undefined): string {
  if (value === undefined) return '—';
  if (value === 0) return '$0';
  if (value >= 10) return `$${value.toFixed(2)}`;
  if (value >= 0.01) return `$${value.toFixed(3)}`;
  return `$${value.toFixed(4)}`;
}

/**
 * One table: the overhead per million requests at each rate, per component, the article's beside
 * Tollgate's on each transport.
 */
export function overheadMarkdown(tables: readonly OverheadTable[]): string {
  const header = ['per million requests', 'baseline (article)'];
  const align = ['---', '---:'];
  for (const t of ['sqs', 'kinesis'] as const) {
    for (const table of tables) {
      header.push(`${t === 'sqs' ? 'SQS' : 'Kinesis'} @ ${table.rps.toLocaleString('en-US')}/s`);
      align.push('---:');
    }
  }
  const baselineCell = (pick: (table: OverheadTable) => number | undefined) => {
    const values = [...new Set(tables.map((table) => usdPerMillion(pick(table))))];
    return values.join(' / ');
  };
  const cells = (pick: (table: OverheadTable, t: Transport) => string) =>
    (['sqs', 'kinesis'] as const).flatMap((t) => tables.map((table) => pick(table, t)));
  const rows: string[][] = [
    [
      'measured at (events/s; avg batch)',
      'in the request',
      ...cells((table, t) => {
        const m = table.measured[t];
        return m
          ? `${m.interpolated ? '≈ ' : ''}${Math.round(m.rate).toLocaleString('en-US')}; ${m.batch.toFixed(1)}`
          : '—';
      }),
    ],
    ...(tables[0]?.rows ?? []).map((row, i) => [
      row.component,
      row.cost.baseline === undefined ? '—' : baselineCell((table) => table.rows[i]?.cost.baseline),
      ...cells((table, t) => usdPerMillion(table.rows[i]?.cost[t])),
    ]),
    [
      '**metering overhead per million requests**',
      `**${baselineCell((table) => table.perMillion.baseline)}**`,
      ...cells((table, t) => `**${usdPerMillion(table.perMillion[t])}**`),
    ],
  ];
  return [
    `| ${header.join(' | ')} |`,
    `| ${align.join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Metering's figures at each measured rate, per transport: what the costs at each rate use. */
export function meteringPointsMarkdown(results: BenchResults): string {
  const columns = (['sqs', 'kinesis'] as const).flatMap((t) =>
    meteringPoints(results, t).map((p) => ({ t, p })),
  );
  const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : '—');
  const rows: Array<[string, (p: MeteringPoint, t: Transport) => string]> = [
    ['DynamoDB write units per event', (p) => f(p.writeUnitsPerEvent)],
    ['DynamoDB write requests per event', (p) => f(p.writeRequestsPerEvent)],
    [
      "consumer's billed SQS requests per event",
      (p, t) => (t === 'sqs' ? f(p.consumerSqsRequestsPerEvent) : '—'),
    ],
    [
      'metering invocations per event (avg batch)',
      (p) => `${f(p.invocationsPerEvent, 4)} (${f(p.batch, 1)})`,
    ],
    ['metering handler, mean ms per batch', (p) => f(p.meteringMs, 1)],
  ];
  return [
    `| metering at a steady rate (measured) | ${columns.map(({ t, p }) => `${t === 'sqs' ? 'SQS' : 'Kinesis'} @ ${p.rate.toLocaleString('en-US')}/s`).join(' | ')} |`,
    `| --- | ${columns.map(() => '---:').join(' | ')} |`,
    ...rows.map(([name, value]) => `| ${name} | ${columns.map(({ t, p }) => value(p, t)).join(' | ')} |`),
  ].join('\n');
}
