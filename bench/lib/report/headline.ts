import { costAt, inputsAt, meteringOverhead, usd, usdPerMillion } from '../../cost-model';
import {
  type BenchResults,
  type CpuResults,
  GATE_CPU_TARGET,
  type PacedRun,
  TARGET_LABELS,
  TARGETS,
  type Target,
  TRANSPORTS,
  type Transport,
} from '../types';
import { int, ms, ratio, table, yesNo } from './format';

export const COST_RATES = [10, 100, 1000] as const;
/** The paced rate the headline's write units per event are given at. */
export const PACED_HEADLINE_RATE = 1_000;

/** The paced run of a transport at `rate` (default: the headline's), if the results have one. */
export function pacedAt(
  r: BenchResults,
  t: Transport,
  rate: number = PACED_HEADLINE_RATE,
): PacedRun | undefined {
  return r.paced?.[t]?.find((p) => p.rate === rate && p.ledgerFlush === undefined);
}

/**
 * The gate's CPU against the key-api check, as the headline says it; results from before the gate
 * rows say so instead.
 */
function gateCpuSummary(cpu: CpuResults): string {
  const g = cpu.gate;
  if (!g) return 'not measured in this run';
  return `ALB ${ratio(g.alb.cpuRatio)}: within ${g.target}×: ${yesNo(g.met)}; Hono ${ratio(g.hono.cpuRatio)} (Hono's Request/Response included; section 2)`;
}

const per = (f: (t: Target) => string) => TARGETS.map(f);

/** Rows of the key check itself: over HTTP, and its CPU in process (the gate's included). */
function keyCheckRows(r: BenchResults): string[][] {
  const handler = r.cpu.rows.find((row) => row.name === 'handler');
  const sha = r.cpu.rows.find((row) => row.name === 'sha256');
  return [
    [
      `key checks / s (${r.settings.connections} connections, median of ${r.settings.rounds})`,
      ...per((t) =>
        t === 'baseline'
          ? int(r.http[t].reqPerSec)
          : `${int(r.http[t].reqPerSec)} (${ratio(r.http[t].ratioToBaseline.reqPerSec)})`,
      ),
    ],
    ['latency p50 / p99, ms (same load)', ...per((t) => `${ms(r.http[t].p50Ms)} / ${ms(r.http[t].p99Ms)}`)],
    ['latency p50, ms (1 connection)', ...per((t) => ms(r.http[t].sequential.latencyMs.p50, 2))],
    [
      'ns per check in process (warm cache, no-op publish; CPU time)',
      '—',
      `${int(handler?.nsPerOp ?? Number.NaN)} (${int(handler?.cpuNsPerOp ?? Number.NaN)}): ${ms(handler?.ratioToSha256, 1)}× one SHA-256 of a key, ${int(sha?.nsPerOp ?? Number.NaN)} (${int(sha?.cpuNsPerOp ?? Number.NaN)})`,
      'same code',
    ],
    [
      `gate CPU per request ÷ key-api check, in process (target: gate within ${GATE_CPU_TARGET}× of the key-api check)`,
      '—',
      gateCpuSummary(r.cpu),
      'same code',
    ],
  ];
}

/** Rows of what a request writes: under a backlog, and at the headline's paced rate. */
function writeRows(r: BenchResults): string[][] {
  return [
    [
      'DynamoDB write requests / request (a backlog: full batches)',
      ...per((t) => r.writes[t].perEvent.writeRequests.toFixed(3)),
    ],
    [
      'DynamoDB write units / request (a backlog: full batches)',
      ...per((t) => r.writes[t].perEvent.writeUnits.toFixed(2)),
    ],
    [
      `DynamoDB write units / event at ${PACED_HEADLINE_RATE.toLocaleString('en-US')} events/s (${r.settings.paced.keys} Zipf keys)`,
      r.writes.baseline.perEvent.writeUnits.toFixed(2),
      ...TRANSPORTS.map((t) => {
        const p = pacedAt(r, t);
        return p ? `${p.perEvent.writeUnits.toFixed(3)} (batches of ${ms(p.metering.avgBatch, 0)})` : '—';
      }),
    ],
  ];
}

/** Rows of the sustained load and the Kinesis publish check. */
function sustainedRows(r: BenchResults): string[][] {
  return [
    [
      `sustained load: accepted req/s (wrk, ${r.settings.sustained.connections} connections, ${r.settings.sustained.durationSec} s)`,
      '—',
      ...TRANSPORTS.map((t) => int(r.sustained[t].acceptedPerSec)),
    ],
    [
      'usage lag p50 / p95 during the load, ms',
      'synchronous',
      ...TRANSPORTS.map(
        (t) => `${ms(r.sustained[t].lagDuringMs.p50, 0)} / ${ms(r.sustained[t].lagDuringMs.p95, 0)}`,
      ),
    ],
    [
      'backlog at the end of the load, events',
      '—',
      ...TRANSPORTS.map((t) => int(r.sustained[t].backlogAtEnd)),
    ],
    [
      'drained after the load, ms',
      '—',
      ...TRANSPORTS.map((t) =>
        Number.isFinite(r.sustained[t].drainMs) ? int(r.sustained[t].drainMs) : 'not drained',
      ),
    ],
    [
      'Kinesis publish: bare PutRecord / key-api over HTTP, req/s (same in flight)',
      '—',
      '—',
      `${int(r.publishCheck.bare.reqPerSec)} / ${int(r.publishCheck.keyApi.acceptedPerSec)}`,
    ],
  ];
}

/** Rows of what metering and AWS cost, how soon usage shows, and exactness. */
function costAndExactRows(r: BenchResults): string[][] {
  const costs = COST_RATES.map((rps) => costAt(inputsAt(r, rps), rps));
  const overhead = COST_RATES.map((rps) => meteringOverhead(r, rps));
  return [
    [
      `metering overhead per million requests at ${COST_RATES.map((c) => c.toLocaleString('en-US')).join(' / ')} req/s`,
      ...per((t) => overhead.map((o) => usdPerMillion(o.perMillion[t])).join(' / ')),
    ],
    [
      'visible in usage, p50 / p95 ms',
      'in the answer (synchronous)',
      ...(['sqs', 'kinesis'] as const).map(
        (t) => `${ms(r.freshness[t].visibleMs.p50, 0)} / ${ms(r.freshness[t].visibleMs.p95, 0)}`,
      ),
    ],
    ...costs.map((c) => [
      `AWS cost a month at ${c.rps.toLocaleString('en-US')} req/s (ALB)`,
      ...per((t) => usd(c.total[t])),
    ]),
    [
      'every 200 counted exactly once',
      ...per((t) =>
        t === 'baseline'
          ? r.exactChecks.every((c) => c.ok)
            ? 'yes'
            : 'NO'
          : r.exactByTransport?.[t]
            ? 'yes (per key and account, every phase)'
            : 'NO',
      ),
    ],
  ];
}

/** The side-by-side summary: printed by `npm run bench` and at the top of BENCHMARKS.md. */
export function headlineTable(r: BenchResults): string {
  const rows: string[][] = [...keyCheckRows(r), ...writeRows(r), ...sustainedRows(r), ...costAndExactRows(r)];
  return table(['', ...TARGETS.map((t) => TARGET_LABELS[t])], rows, ['---', '---:', '---:', '---:']);
}
