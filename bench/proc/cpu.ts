import { createHash } from 'node:crypto';
import type { ALBResult } from 'aws-lambda';
import { DEFAULT_METRICS_FLUSH_MS } from '../../contracts/config';
import { generateApiKey, isWellFormedApiKey } from '../../services/accounts/api-key';
import { emfBytesPerInvocation } from '../lib/cpu/emf';
import {
  albEvent,
  COMMON_HEADERS,
  emfMetrics,
  gateWith,
  handlerWith,
  metricsWith,
  OWNER_REQUEST,
  OWNER_ROUTES,
  onAPlan,
  PREFIX,
} from '../lib/cpu/subjects';
import { keepResults, type Operation, type TimingSettings, time } from '../lib/cpu/timing';
import { serveParent } from '../lib/ipc';
import {
  type CpuResults,
  type CpuRow,
  GATE_CPU_TARGET,
  type GateCpuCheck,
  PLAN_CPU_TARGET,
} from '../lib/types';

/**
 * Child process: what one key check costs in CPU, in process, with a warm cache and a publisher that
 * does nothing: key-api composed by composeKeyApi (the real app, KeyVerifier and KeyCache), no network. Next to it, one
 * SHA-256 of a key, the floor (a check cannot do less than hash the key it looks up), and the gate
 * an owner composes (composeGate) around a trivial owner handler, as an ALB handler and as Hono
 * middleware, held against the key-api check (GATE_CPU_TARGET).
 *
 * Each row first runs `minIterations` operations unmeasured (the JIT settles, and the time per
 * operation is estimated), then `rounds` rounds of as many operations as fill `roundMs` (at least
 * `minIterations`), each timed with process.hrtime.bigint(); the row reports the median round. The
 * process's CPU time per operation (process.cpuUsage, all its threads, GC included) is kept next to
 * it: on a shared machine, wall time also counts the moments another process had the core. Rows
 * that answer HTTP count the status of every answer, the unmeasured round's included, and fail
 * unless all are 200.
 *
 * It also measures what key-api's metrics cost in CloudWatch Logs per invocation, amortized over
 * its buffered flushes (`emfLineBytes`, see emfBytesPerInvocation).
 *
 * argv: <roundMs> <rounds> <minIterations>
 */
const [roundMsArg, roundsArg, minIterationsArg] = process.argv.slice(2);
const TIMING: TimingSettings = {
  roundMs: Number(roundMsArg ?? 300),
  rounds: Number(roundsArg ?? 7),
  minIterations: Number(minIterationsArg ?? 10_000),
};

type Row = Omit<CpuRow, 'ratioToSha256'>;

/** Everything the rows call, for one freshly generated key. */
function subjectsFor(key: string) {
  const honoUrl = `http://${COMMON_HEADERS.host}${OWNER_REQUEST.path}`;
  return {
    key,
    header: albEvent({ 'x-api-key': key }),
    body: albEvent({ 'content-type': 'application/json' }, JSON.stringify({ key })),
    gated: albEvent({ 'x-api-key': key }, '', OWNER_REQUEST),
    honoUrl,
    honoInit: { method: OWNER_REQUEST.method, headers: { ...COMMON_HEADERS, 'x-api-key': key } },
    quiet: handlerWith(metricsWith(true)),
    // As on Lambda: metrics on and buffered as handler.ts does it. Lines are built and serialised;
    // writing them to stdout is left out (console swapped for a sink).
    emf: handlerWith(emfMetrics(() => {})),
    gate: gateWith(metricsWith(true)),
    planned: gateWith(metricsWith(true), onAPlan),
  };
}
type Subjects = ReturnType<typeof subjectsFor>;

/** Warm: the key's cache entry and usage figure are loaded once, as after the first request. */
async function warm(s: Subjects): Promise<void> {
  const check = async (what: string, answer: Promise<ALBResult | Response> | Response) => {
    const result = await answer;
    const code = 'statusCode' in result ? result.statusCode : result.status;
    if (code !== 200) throw new Error(`${what}: the check answered ${code}`);
  };
  await check('handler', s.quiet.handler(s.header));
  await check('handler-emf', s.emf.handler(s.header));
  await check('gate-alb', s.gate.alb(s.gated));
  await check('gate-alb-plan', s.planned.alb(s.gated));
  await check('gate-hono', s.gate.app.request(s.honoUrl, s.honoInit));
  await check('hono-bare', s.gate.bareApp.request(s.honoUrl, s.honoInit));
}

/** Every row, one after the other, in the order BENCHMARKS.md lists them. */
async function measureRows(s: Subjects): Promise<Row[]> {
  const { key, quiet, emf, gate, planned } = s;
  const rows: Row[] = [];
  const add = async (name: string, what: string, op: Operation) => {
    const row = { name, what, rounds: TIMING.rounds, ...(await time(op, TIMING)) };
    const other = Object.keys(row.statuses ?? {}).filter((code) => code !== '200');
    if (other.length > 0) throw new Error(`${name}: answers other than 200: ${JSON.stringify(row.statuses)}`);
    rows.push(row);
  };
  await add('sha256', 'SHA-256 of one key (node:crypto createHash): the floor', {
    kind: 'sync',
    run: () => createHash('sha256').update(key).digest('hex'),
  });
  await add('checksum', 'format + CRC-32 checksum of one key (isWellFormedApiKey)', {
    kind: 'sync',
    run: () => isWellFormedApiKey(key, PREFIX),
  });
  await add('verify', 'KeyVerifier.verify: checksum + SHA-256 + warm cache lookup', {
    kind: 'async',
    run: () => quiet.verifier.verify(key),
  });
  await add(
    'handler',
    'key-api handler, x-api-key header, no-op publisher, metrics disabled (as in the local stack)',
    { kind: 'alb', run: () => quiet.handler(s.header) },
  );
  await add('handler-body', 'the same, key in the JSON body {"key": ...} (the article style)', {
    kind: 'alb',
    run: () => quiet.handler(s.body),
  });
  await add(
    'handler-emf',
    `the same with metrics enabled and buffered as on Lambda (one EMF line per ${DEFAULT_METRICS_FLUSH_MS / 1000} s or 100 latencies; not written)`,
    { kind: 'alb', run: () => emf.handler(s.header) },
  );
  await add(
    'gate-alb',
    `gate: composeGate(...).albHandler around an owner handler answering a fixed small JSON 200, ${OWNER_ROUTES.length} routes, ${OWNER_REQUEST.method} ${OWNER_REQUEST.path}, x-api-key header, no-op publisher, metrics disabled`,
    { kind: 'alb', run: () => gate.alb(s.gated) },
  );
  await add(
    'gate-alb-plan',
    'the same gate with the account on a plan: a monthly quota (counters read once a second, counted locally between reads) and a rate limit, both checked on every request and never reached',
    { kind: 'alb', run: () => planned.alb(s.gated) },
  );
  await add(
    'gate-hono',
    `gate: composeGate(...).middleware() on a Hono app with the same routes and answer, app.request(${OWNER_REQUEST.method} ${OWNER_REQUEST.path}); includes Hono's Request/Response work`,
    { kind: 'fetch', run: () => gate.app.request(s.honoUrl, s.honoInit) },
  );
  await add(
    'hono-bare',
    "the same Hono app and request without the gate: Hono's own Request/Response and routing work, for reference",
    { kind: 'fetch', run: () => gate.bareApp.request(s.honoUrl, s.honoInit) },
  );
  return rows;
}

/** Each gate row against the key-api check, by CPU time per operation (what the target is about). */
function gateCheck(rows: readonly Row[]): GateCpuCheck | undefined {
  const find = (name: string) => rows.find((r) => r.name === name);
  const handler = find('handler');
  const alb = find('gate-alb');
  const hono = find('gate-hono');
  const bare = find('hono-bare');
  if (!handler || !alb || !hono) return undefined;
  const against = (row: Row) => {
    const cpuRatio = row.cpuNsPerOp / handler.cpuNsPerOp;
    return {
      cpuRatio,
      wallRatio: row.nsPerOp / handler.nsPerOp,
      met: Number.isFinite(cpuRatio) && cpuRatio <= GATE_CPU_TARGET,
    };
  };
  const albRatio = against(alb);
  const withPlan = find('gate-alb-plan');
  const planCpu = withPlan ? withPlan.cpuNsPerOp / alb.cpuNsPerOp : Number.NaN;
  return {
    target: GATE_CPU_TARGET,
    against: 'handler',
    alb: albRatio,
    hono: {
      ...against(hono),
      ...(bare ? { middlewareCpuRatio: (hono.cpuNsPerOp - bare.cpuNsPerOp) / handler.cpuNsPerOp } : {}),
    },
    met: albRatio.met,
    ...(withPlan
      ? {
          plan: {
            target: PLAN_CPU_TARGET,
            cpuRatio: planCpu,
            wallRatio: withPlan.nsPerOp / alb.nsPerOp,
            met: Number.isFinite(planCpu) && planCpu <= PLAN_CPU_TARGET,
          },
        }
      : {}),
  };
}

serveParent(async () => ({
  ready: {},
  handlers: {
    run: async (): Promise<CpuResults> => {
      const s = subjectsFor(generateApiKey(PREFIX).key);
      await warm(s);
      const rows = await measureRows(s);
      keepResults();
      const sha = rows.find((r) => r.name === 'sha256')?.nsPerOp ?? Number.NaN;
      const gateCpu = gateCheck(rows);
      return {
        rows: rows.map((r) => ({ ...r, ratioToSha256: r.nsPerOp / sha })),
        ...(gateCpu ? { gate: gateCpu } : {}),
        // Per invocation, amortized over the flushes (see emfBytesPerInvocation); the field keeps
        // its name so results.json stays readable by every reader.
        emfLineBytes: await emfBytesPerInvocation(s.header),
      };
    },
  },
  cleanUp: async () => {},
}));
