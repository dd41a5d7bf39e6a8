import { type BenchResults, type CpuResults, TARGET_LABELS, TARGETS } from '../types';
import { int, lines, ms, ratio, table, yesNo } from './format';

/** §1: throughput and latency of the key check over HTTP, per design. */
export function httpSection(r: BenchResults): string {
  const s = r.settings;
  return lines(
    '## 1. Key checks over HTTP',
    '',
    `POST / with the article's body \`{"key": ...}\` through the local ALB adapter, autocannon on loopback, ${s.connections} connections, ${s.durationSec} s per run, ${s.rounds === 1 ? 'one round' : `${s.rounds} rounds, the order rotating each round`} after a ${s.warmupSec} s warm-up per target; keys drawn Zipf(${s.zipfS}) over ${s.keys} keys (${s.accounts} accounts), the same sequence for every target. Each service runs in its own process; Tollgate's cache is warm.`,
    '',
    table(
      ['', 'req/s', 'ratio', 'p50 ms', 'p99 ms', 'runs (req/s)', '1 conn: p50 ms', 'handler mean ms'],
      TARGETS.map((t) => {
        const h = r.http[t];
        return [
          TARGET_LABELS[t],
          int(h.reqPerSec),
          ratio(h.ratioToBaseline.reqPerSec),
          ms(h.p50Ms),
          ms(h.p99Ms),
          h.runs.map((run) => int(run.reqPerSec)).join(', '),
          ms(h.sequential.latencyMs.p50, 2),
          ms(h.sequential.handlerMs.mean, 2),
        ];
      }),
    ),
    '',
    'Non-200 answers: ' +
      TARGETS.map(
        (t) =>
          `${TARGET_LABELS[t]} ${int(r.http[t].runs.reduce((sum, run) => sum + run.requests - run.ok200, 0))}`,
      ).join(', ') +
      '.',
  );
}

/** Section 2's verdict on the gate's speed goal, from the run's own rows. */
function gateCpuParagraph(cpu: CpuResults): string {
  const g = cpu.gate;
  if (!g) {
    return '**The gate against the key-api check:** not measured in this run (its results predate the gate rows).';
  }
  const own =
    g.hono.middlewareCpuRatio === undefined
      ? ''
      : `; without Hono's own work (the bare Hono row subtracted) the middleware comes to ${ratio(g.hono.middlewareCpuRatio)}`;
  return [
    `**The gate against the key-api check** (CPU ns per op, ÷ the key-api handler row, same run). Target: gate within ${g.target}× of the key-api check: **${g.met ? 'met' : 'NOT met'}**.`,
    `The ALB wrapper (composeGate's albHandler, the gate and its thinnest adapter; the target's verdict) is ${ratio(g.alb.cpuRatio)} (wall ${ratio(g.alb.wallRatio)}): within ${g.target}×: ${yesNo(g.alb.met)}.`,
    `The Hono middleware through app.request is ${ratio(g.hono.cpuRatio)} (wall ${ratio(g.hono.wallRatio)}): within ${g.target}×: ${yesNo(g.hono.met)}; that includes Hono building a Request and a Response per call${own}.`,
    g.plan
      ? `**A plan attached** (a quota and a rate limit checked on every request, the gate-alb-plan row ÷ gate-alb): ${ratio(g.plan.cpuRatio)} (wall ${ratio(g.plan.wallRatio)}). Target: within ${g.plan.target}× of the gate without one: **${g.plan.met ? 'met' : 'NOT met'}**.`
      : '**A plan attached:** not measured in this run (its results predate the plan row).',
  ].join('\n');
}

/** §2: CPU per key check in process, and the gate against it. */
export function cpuSection(r: BenchResults): string {
  const s = r.settings;
  const checkCpu = r.cpu.rows.find((row) => row.name === 'handler')?.cpuNsPerOp;
  return lines(
    '## 2. CPU per key check, in process',
    '',
    `Each row: one unmeasured round of ${int(s.cpuMinIterations)} operations (JIT warm-up, calibration), then ${s.cpuRounds} rounds of about ${s.cpuRoundMs} ms each (at least ${int(s.cpuMinIterations)} operations), timed with process.hrtime.bigint(); the median round is reported.`,
    '',
    table(
      ['operation', 'ns per op', '× SHA-256', 'CPU ns per op', '× key-api check (CPU)', 'ops per round'],
      r.cpu.rows.map((row) => [
        `${row.what}`,
        int(row.nsPerOp),
        row.ratioToSha256.toFixed(1),
        int(row.cpuNsPerOp),
        checkCpu && Number.isFinite(row.cpuNsPerOp / checkCpu) ? ratio(row.cpuNsPerOp / checkCpu) : '—',
        int(row.iterations),
      ]),
      ['---', '---:', '---:', '---:', '---:', '---:'],
    ),
    '',
    gateCpuParagraph(r.cpu),
  );
}
