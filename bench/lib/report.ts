import {
  assumptionsMarkdown,
  costAt,
  costTableMarkdown,
  crossovers,
  inputsAt,
  inputsMarkdown,
  measuredInputs,
  meteringOverhead,
  meteringPointsMarkdown,
  overheadMarkdown,
  rate,
  usd,
  usdPerMillion,
} from '../cost-model';
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
} from './types';

export const COST_RATES = [10, 100, 1000] as const;
/** The paced rate the headline's write units per event are given at. */
export const PACED_HEADLINE_RATE = 1_000;

/** The paced run of a transport at `rate` (default: the headline's), if the results have one. */
export function pacedAt(
  r: BenchResults,
  t: Transport,
  rate: number = PACED_HEADLINE_RATE,
): PacedRun | undefined {
  return r.paced?.[t]?.find((p) => p.rate === rate);
}

const ms = (v: number | undefined, digits = 1) =>
  v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
const int = (v: number) => Math.round(v).toLocaleString('en-US');
const ratio = (v: number) => `${v.toFixed(2)}×`;

function table(header: string[], rows: string[][], align?: string[]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${(align ?? header.map((_, i) => (i === 0 ? '---' : '---:'))).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const yesNo = (met: boolean) => (met ? 'yes' : 'NO');

/**
 * The gate's CPU against the key-api check, as the headline says it; results from before the gate
 * rows say so instead.
 */
function gateCpuSummary(cpu: CpuResults): string {
  const g = cpu.gate;
  if (!g) return 'not measured in this run';
  return `ALB ${ratio(g.alb.cpuRatio)}: within ${g.target}×: ${yesNo(g.met)}; Hono ${ratio(g.hono.cpuRatio)} (Hono's Request/Response included; section 2)`;
}

/** The side-by-side summary: printed by `npm run bench` and at the top of BENCHMARKS.md. */
export function headlineTable(r: BenchResults): string {
  const costs = COST_RATES.map((rps) => costAt(inputsAt(r, rps), rps));
  const overhead = COST_RATES.map((rps) => meteringOverhead(r, rps));
  const handler = r.cpu.rows.find((row) => row.name === 'handler');
  const sha = r.cpu.rows.find((row) => row.name === 'sha256');
  const per = (f: (t: Target) => string) => TARGETS.map(f);
  const rows: string[][] = [
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
  return table(['', ...TARGETS.map((t) => TARGET_LABELS[t])], rows, ['---', '---:', '---:', '---:']);
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

export function renderBenchmarks(r: BenchResults): string {
  const s = r.settings;
  const m = r.machine;
  const inputs = Object.fromEntries(TARGETS.map((t) => [t, measuredInputs(r, t)])) as Record<
    Target,
    ReturnType<typeof measuredInputs>
  >;
  const cross = crossovers((rps) => inputsAt(r, rps));
  const sections: string[] = [];
  const add = (...lines: string[]) => sections.push(lines.join('\n'));

  add(
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/run.ts) from bench/results.json. Do not edit by hand: run it again. -->',
    '',
    'Tollgate measured side by side with the design of the article it grew out of (the **baseline**: one',
    'GSI query by the plaintext key and one `SET Count = Count + 1` per request, reimplemented in',
    '`bench/baseline/` for comparison only), on one machine, against the local stack (`npm start`',
    'engines: DynamoDB Local, local SQS and Kinesis emulators), in one run. Run it with `npm run bench`',
    `(this run took ${int(r.durationSec)} s; it starts its own stack on free ports) and price it with`,
    '`npm run cost -- --rps 10,100,1000`. The raw figures are in bench/results.json.',
    '',
    `**Run:** ${r.finishedAt.slice(0, 19).replace('T', ' ')} UTC, ${int(r.durationSec)} s, commit \`${m.commit.slice(0, 12)}\`${m.dirty ? ' (with uncommitted changes)' : ''}, profile \`${s.profile}\`.`,
    `**Machine:** ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}. Load average ${m.loadAverageAtStart.join(' / ')} at the start, ${r.loadAverageAtEnd.join(' / ')} at the end (the machine was shared).`,
    '',
    headlineTable(r),
  );

  const tg = r.writes.sqs;
  const pace = (t: 'sqs' | 'kinesis') => {
    const mt = r.writes[t].metering;
    return mt && mt.durationMs.mean > 0 ? mt.avgBatch / (mt.durationMs.mean / 1000) : Number.NaN;
  };
  add(
    '## How to read this',
    '',
    '- **Compare within a run, not across machines.** Every number comes from one run on one machine, the',
    '  parts under test sharing its cores with the emulators, the load generator and whatever else ran',
    '  (see the load average above). Ratios between columns mean something; absolute figures do not carry',
    '  over to AWS.',
    '- **Locally, the engines set the pace.** Throughput and latency measure the whole path on loopback:',
    "  for the baseline mostly DynamoDB Local's query and update, for Tollgate the SQS or Kinesis emulator",
    '  taking the usage event. On AWS both designs scale out per request (one Lambda invocation each);',
    '  what carries over is the work per request: the CPU figures and the operation counts.',
    '- **CPU per check** is the key-api handler in process with a warm cache and a publisher that does',
    "  nothing: what Tollgate's own code costs per request, next to one SHA-256 of a key (the floor). The",
    '  EMF row is what handler.ts adds on Lambda: metrics summed in the container and written once a',
    '  minute (or per 100 latencies), failures at once. The gate rows are the gate an owner composes',
    '  (composeGate) around a handler that does nothing, as an ALB handler and as Hono middleware,',
    "  divided by the key-api check's CPU in the same run: the gate must not add cost to the hot path.",
    '- **Write requests and write units per request** are counted at the DynamoDB client of every',
    "  process. AWS bills 2 write units per item of a transaction; the baseline's update costs 2 because",
    '  its index projects ALL attributes (DynamoDB Local reports those 2 itself; its figures for',
    "  transactions are not AWS's, so transactional units are counted as 2 per item).",
    `  **Over SQS** (unordered, at-least-once) Tollgate pays one transactional dedupe mark per request (2 units)`,
    '  and every batch adds to three counters per (key, day) it touched in the same transaction (6 units):',
    `  with batches of ${ms(tg.metering?.avgBatch, 0)} events over ${s.keys} Zipf keys, ${tg.perEvent.writeRequests.toFixed(2)} transactions and ${tg.perEvent.writeUnits.toFixed(2)} units per request against the`,
    `  baseline's ${r.writes.baseline.perEvent.writeUnits.toFixed(2)}. **Over Kinesis** (ordered per shard) there is no per-event write: each counter keeps the`,
    "  shard's last sequence number and takes a batch's events in one conditional UpdateItem (1 unit), so",
    `  with batches of ${ms(r.writes.kinesis.metering?.avgBatch, 0)} events it is ${r.writes.kinesis.perEvent.writeRequests.toFixed(2)} requests and ${r.writes.kinesis.perEvent.writeUnits.toFixed(2)} units per request (docs/metering.md).`,
    '  Either way the counter share falls as batches fill (more events per key per batch), and batch fill',
    '  depends on the rate, so these per-request figures hold for this load.',
    '- **Accepted → counted under load** grows when the load outruns one consumer: the local consumer',
    `  commits about ${int(pace('sqs'))} (SQS) and ${int(pace('kinesis'))} (Kinesis) events a second against DynamoDB Local, so a backlog builds`,
    '  and the lag measures it. On AWS, SQS adds consumers as the queue grows; a Kinesis shard is read by',
    '  one batch at a time (unless ParallelizationFactor is raised), so this pace per shard matters there.',
    '- **Visible in usage** is from the 200 to `GET /usage` (a strongly consistent read) showing the',
    "  request, on an idle pipeline. The local SQS emulator's long poll returns only when 10 messages are",
    "  there or its wait (1 s) ends, which dominates the SQS figure; on AWS the event source mapping's",
    '  batching window (1 s in infra/cdk) does.',
    '- **Cost** multiplies the measured counts by list prices (bench/prices.ts; check them). Assumptions',
    '  are listed under the cost tables.',
    '- **Exact**: after every phase the benchmark waits for each pipeline and checks each transport on its',
    "  own (its own owners and keys): every key's total and every account's daily counts against the 200s",
    '  its key API answered for them, so a double count on one transport cannot cancel a loss on the other.',
    '  The baseline is checked the same way (its Count total).',
  );

  add(
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

  const checkCpu = r.cpu.rows.find((row) => row.name === 'handler')?.cpuNsPerOp;
  add(
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

  const w = r.writes;
  add(
    '## 3. Write amplification',
    '',
    `${int(s.writeEvents)} requests per transport through the real pipeline (key-api → SQS or Kinesis → the local stack's poller with its default batch settings → the metering handler), keys Zipf(${s.zipfS}) over ${s.keys} keys in ${s.accounts} accounts, ${s.connections} connections, counted at every client. The two transports ran at the same time (separate key APIs, queue and stream, consumer processes; one DynamoDB Local); the baseline ran ${int(s.baselineWriteEvents)} requests alone (its counts per request do not change with volume).`,
    '',
    table(
      ['per request', ...TARGETS.map((t) => TARGET_LABELS[t])],
      [
        ['events (200s)', ...TARGETS.map((t) => int(w[t].events))],
        ['DynamoDB write requests', ...TARGETS.map((t) => w[t].perEvent.writeRequests.toFixed(3))],
        ['write units (AWS billing)', ...TARGETS.map((t) => w[t].perEvent.writeUnits.toFixed(3))],
        [
          'DynamoDB read requests (read units)',
          ...TARGETS.map(
            (t) => `${w[t].perEvent.readRequests.toFixed(3)} (${w[t].perEvent.readUnits.toFixed(3)})`,
          ),
        ],
        [
          'transport requests (SQS billed) / PUT units (Kinesis)',
          '—',
          w.sqs.perEvent.transportRequests.toFixed(3),
          w.kinesis.perEvent.payloadUnits.toFixed(3),
        ],
        [
          'metering invocations (avg batch)',
          '—',
          ...(['sqs', 'kinesis'] as const).map(
            (t) => `${w[t].perEvent.meteringInvocations.toFixed(4)} (${ms(w[t].metering?.avgBatch, 1)})`,
          ),
        ],
        [
          'accepted → counted, p50 / p95 ms (under this load)',
          'synchronous',
          ...(['sqs', 'kinesis'] as const).map(
            (t) => `${ms(w[t].metering?.lagMs.p50, 0)} / ${ms(w[t].metering?.lagMs.p95, 0)}`,
          ),
        ],
        [
          'consumer pace, events/s (batch ÷ handler time)',
          '—',
          ...(['sqs', 'kinesis'] as const).map((t) => int(pace(t))),
        ],
        ['load, req/s', ...TARGETS.map((t) => int(w[t].reqPerSec))],
        [
          'exact (total; per key)',
          ...TARGETS.map(
            (t) =>
              `${w[t].exact.ok ? 'yes' : 'NO'}; ${w[t].perKeyExact === null ? '—' : w[t].perKeyExact ? 'yes' : 'NO'}`,
          ),
        ],
      ],
      ['---', '---:', '---:', '---:'],
    ),
    '',
    'Requests by operation (all processes):',
    '',
    ...TARGETS.map(
      (t) =>
        `- ${TARGET_LABELS[t]}: ${Object.entries({ ...w[t].dynamodb, ...w[t].transport })
          .filter(([k]) => !/\.(bytes|capacityUnits|billedRequests|payloadUnits|Put|Update)$/.test(k))
          .map(([k, v]) => `${k} ${int(v)}`)
          .join(', ')}`,
    ),
  );

  add(
    '## 4. Freshness',
    '',
    `${s.freshnessSamples} requests per transport (both transports probed at the same time, each on a key of its own), one at a time on an otherwise idle pipeline: from the 200 received to \`GET /usage?keyId=…\` counting it, polled every ${s.pollIntervalMs} ms. The baseline returns its count in the answer itself.`,
    '',
    table(
      ['transport', 'p50 ms', 'p95 ms', 'max ms'],
      (['sqs', 'kinesis'] as const).map((t) => {
        const f = r.freshness[t].visibleMs;
        return [TARGET_LABELS[t], ms(f.p50, 0), ms(f.p95, 0), ms(f.max, 0)];
      }),
    ),
  );

  if (r.sustained) {
    const ss = s.sustained;
    add(
      '## 5. Sustained load, per transport',
      '',
      `wrk (bench/wrk/keys.lua) against each transport's key API, one transport after the other: ${ss.connections} connections, ${ss.threads} threads, ${ss.durationSec} s; a random key per request from ${ss.keys} keys in ${ss.accounts} accounts of that transport alone, plus ${Math.round(ss.bogusShare * 100)}% of requests on ${ss.bogusKeys} well-formed unknown keys (401). wrk counts its 200s per keyId from the body (per thread, added up in done()). The metering process records each counted event's lag (event time → its batch committed); "during" keeps the events committed before wrk ended. Backlog: accepted − counted the moment the load ended; drain: from then until counted == accepted. Exact: every key and every account of the phase against key-api's 200s.`,
      '',
      table(
        ['', ...TRANSPORTS.map((t) => TARGET_LABELS[t])],
        [
          ['requests / s (all answers)', ...TRANSPORTS.map((t) => int(r.sustained[t].reqPerSec))],
          ['accepted (200) / s', ...TRANSPORTS.map((t) => int(r.sustained[t].acceptedPerSec))],
          [
            'statuses',
            ...TRANSPORTS.map((t) =>
              Object.entries(r.sustained[t].wrk.statuses)
                .map(([k, v]) => `${k}: ${int(v)}`)
                .join(', '),
            ),
          ],
          [
            'wrk latency p50 / p99 ms',
            ...TRANSPORTS.map(
              (t) => `${ms(r.sustained[t].wrk.latencyMs.p50)} / ${ms(r.sustained[t].wrk.latencyMs.p99)}`,
            ),
          ],
          [
            'usage lag during the load, p50 / p95 / max ms',
            ...TRANSPORTS.map((t) => {
              const l = r.sustained[t].lagDuringMs;
              return `${ms(l.p50, 0)} / ${ms(l.p95, 0)} / ${ms(l.max, 0)} (${int(l.count)} events)`;
            }),
          ],
          [
            'usage lag after the load (the backlog), p50 / p95 ms',
            ...TRANSPORTS.map((t) => {
              const l = r.sustained[t].lagAfterMs;
              return `${ms(l.p50, 0)} / ${ms(l.p95, 0)} (${int(l.count)} events)`;
            }),
          ],
          [
            'accepted / counted at the end of the load',
            ...TRANSPORTS.map(
              (t) => `${int(r.sustained[t].acceptedAtEnd)} / ${int(r.sustained[t].countedAtEnd)}`,
            ),
          ],
          ['backlog at the end of the load', ...TRANSPORTS.map((t) => int(r.sustained[t].backlogAtEnd))],
          ['time to drain after the load, ms', ...TRANSPORTS.map((t) => ms(r.sustained[t].drainMs, 0))],
          [
            'metering batches (avg size), duplicates dropped',
            ...TRANSPORTS.map(
              (t) =>
                `${int(r.sustained[t].consumer.invocations)} (${ms(r.sustained[t].consumer.avgBatch, 1)}), ${int(r.sustained[t].consumer.duplicates)}`,
            ),
          ],
          [
            "wrk's 200s per key within key-api's (gap)",
            ...TRANSPORTS.map(
              (t) => `${r.sustained[t].client.agrees ? 'yes' : 'NO'} (${int(r.sustained[t].client.gap)})`,
            ),
          ],
          [
            'exact: keys wrong, accounts wrong',
            ...TRANSPORTS.map((t) => {
              const e = r.sustained[t].exact;
              return `${e.ok ? 'yes' : 'NO'}: ${e.keysWrong} of ${e.keys}, ${e.accountsWrong} of ${e.accounts}`;
            }),
          ],
        ],
        ['---', '---:', '---:'],
      ),
    );
  }

  if (r.paced) {
    const p = s.paced;
    add(
      '## 6. Write units per event at steady rates, per transport',
      '',
      `Events (\`newUsageEvent\`, partition key keyId) published straight to the benchmark's queue (SendMessageBatch) or stream (PutRecords) at a paced rate, keys Zipf(${p.zipfS}) over ${p.keys} keys in ${p.accounts} accounts of that run alone, consumed by the metering process with the stack's event source settings (contracts/resources.ts). Write units as AWS bills them (2 per transactional item), counted at the consumer's DynamoDB client; exact per key and per account.`,
      '',
      table(
        [
          'transport',
          'rate / s (achieved)',
          'events',
          'write units / event',
          'write requests / event',
          'avg batch',
          'consumer SQS requests / event',
          'lag p50 / p95 ms',
          'drain ms',
          'exact',
        ],
        TRANSPORTS.flatMap((t) =>
          r.paced[t].map((run) => [
            TARGET_LABELS[t],
            `${int(run.rate)} (${int(run.achievedPerSec)})`,
            int(run.events),
            run.perEvent.writeUnits.toFixed(3),
            run.perEvent.writeRequests.toFixed(3),
            ms(run.metering.avgBatch, 1),
            t === 'sqs' ? run.perEvent.consumerTransportRequests.toFixed(4) : '—',
            `${ms(run.metering.lagMs.p50, 0)} / ${ms(run.metering.lagMs.p95, 0)}`,
            ms(run.drainMs, 0),
            run.exact.ok ? 'yes' : `NO (${run.exact.mismatches.slice(0, 2).join('; ')})`,
          ]),
        ),
        ['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---'],
      ),
    );
  }

  if (r.publishCheck) {
    const pc = r.publishCheck;
    add(
      '## 7. Kinesis publish check',
      '',
      `A bare \`PutRecord\` loop (key-api's Kinesis client settings, ${pc.connections} in flight, ${pc.durationSec} s, to a stream no one reads) against key-api over HTTP on Kinesis (the sustained phase, same number of connections): how much of the Kinesis key API's ceiling is the local Kinesis emulator's.`,
      '',
      table(
        ['', 'req/s', 'p50 ms'],
        [
          ['bare PutRecord', int(pc.bare.reqPerSec), ms(pc.bare.latencyMs.p50)],
          ['key-api over HTTP (Kinesis), accepted', int(pc.keyApi.acceptedPerSec), ms(pc.keyApi.p50Ms)],
          ['bare ÷ key-api', ratio(pc.ratio), ''],
        ],
      ),
      '',
      `Bare loop errors: ${int(pc.bare.errors)} of ${int(pc.bare.requests)}.`,
    );
  }

  add(
    '## 8. Cost model',
    '',
    "`npm run cost -- --rps 10,100,1000` prints these from bench/results.json; the inputs are the measured figures above: the key check's from §1-3, metering's at each rate from §6 (the table below), since they depend on how full the batches are.",
    '',
    inputsMarkdown(inputs),
    '',
    meteringPointsMarkdown(r),
    '',
    ...COST_RATES.flatMap((rps) => [costTableMarkdown(costAt(inputsAt(r, rps), rps)), '']),
    '**Metering overhead per million requests**: what counting the requests costs, apart from checking the keys (the components are listed under Assumptions), at each rate with the metering figures measured at that rate (§6; "≈" marks a rate between measured ones, interpolated).',
    '',
    overheadMarkdown(COST_RATES.map((rps) => meteringOverhead(r, rps))),
    '',
    `- **Kinesis costs less than SQS from ${rate(cross.kinesisOverSqs)}** (one shard's hours against SQS's per-request price).`,
    `- The ALB costs less than API Gateway REST in front of the baseline from ${rate(cross.albOverRestApi)} (the article says about 2), and less than an HTTP API from ${rate(cross.albOverHttpApi)}.`,
    '',
    'Assumptions:',
    '',
    assumptionsMarkdown(),
  );

  add(
    '## Exactness checks',
    '',
    `${r.exactChecks.filter((c) => c.ok).length} of ${r.exactChecks.length} passed. Each transport alone, cumulative since the start: the usage metering wrote for that transport's own accounts (UsageReader: keyTotals per key, dailyCounts per account) against the 200s its key API answered; the baseline's Count total against its 200s:`,
    '',
    table(
      [
        'after',
        ...TRANSPORTS.map((t) => `${TARGET_LABELS[t]}: counted / answered (keys, accounts wrong)`),
        'baseline',
        'settled after ms',
        'exact',
      ],
      r.exactChecks.map((c) => [
        c.phase,
        ...TRANSPORTS.map((t) => {
          const e = c.transports?.[t];
          return e
            ? `${int(e.counted)} / ${int(e.answered)} (${e.keysWrong}, ${e.accountsWrong})${e.ok ? '' : ' NO'}`
            : '—';
        }),
        c.baseline ? `${int(c.baseline.counted)} / ${int(c.baseline.answered)}` : '—',
        int(c.settledMs),
        c.ok ? 'yes' : 'NO',
      ]),
      ['---', '---:', '---:', '---:', '---:', '---'],
    ),
    '',
    `Per transport, over every check and phase (sustained and paced included): ${TRANSPORTS.map((t) => `${TARGET_LABELS[t]} ${r.exactByTransport?.[t] ? 'exact' : 'NOT exact'}`).join(', ')}.`,
  );
  return `${sections.join('\n\n')}\n`;
}
