import { type BenchContext, keysOf, load, post } from '../lib/bench-context';
import { median } from '../lib/stats';
import { type HttpTargetResult, type LoadResult, TARGETS, type Target } from '../lib/types';
import { checkExact } from './exactness';

/** Every key once, one at a time: key-api's cache and the JIT see each key before any timing. */
async function warm(ctx: BenchContext, target: Target): Promise<void> {
  const url = ctx.servers[target].ready.endpoint;
  for (const key of keysOf(ctx, target)) {
    const status = await post(url, key);
    if (status !== 200) throw new Error(`${target} answered ${status} to a warm-up`);
  }
}

async function warmUp(ctx: BenchContext): Promise<void> {
  for (const target of TARGETS) {
    await warm(ctx, target);
    ctx.log(`warm-up ${target}: ${ctx.settings.warmupSec} s`);
    await load(ctx, target, { durationSec: ctx.settings.warmupSec });
  }
  await checkExact(ctx, 'warm-up');
}

/** One request at a time, with the handler's own durations from the server process. */
async function sequential(ctx: BenchContext): Promise<Record<Target, HttpTargetResult['sequential']>> {
  const out = {} as Record<Target, HttpTargetResult['sequential']>;
  for (const target of TARGETS) {
    ctx.log(`sequential ${target}: ${ctx.settings.sequentialRequests} requests, 1 connection`);
    await ctx.servers[target].call('startDurations');
    const result = await load(ctx, target, { amount: ctx.settings.sequentialRequests, connections: 1 });
    const handlerMs =
      await ctx.servers[target].call<HttpTargetResult['sequential']['handlerMs']>('stopDurations');
    out[target] = { latencyMs: result.latencyMs, handlerMs };
  }
  await checkExact(ctx, 'sequential');
  return out;
}

function withoutPerKey(result: LoadResult): LoadResult {
  const { perKey200: _dropped, ...rest } = result;
  return rest;
}

/** `rounds` rounds of every target under `connections`, each followed by an exactness check. */
async function throughput(ctx: BenchContext): Promise<Record<Target, LoadResult[]>> {
  const runs: Record<Target, LoadResult[]> = { baseline: [], sqs: [], kinesis: [] };
  for (let round = 0; round < ctx.settings.rounds; round++) {
    // Rotate the order (ABC, BCA, CAB, ...), so no target always runs in the same slot.
    const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length] as Target);
    for (const target of order) {
      const result = await load(ctx, target, { durationSec: ctx.settings.durationSec });
      runs[target].push(withoutPerKey(result));
      ctx.log(
        `throughput ${target} (round ${round + 1}): ${result.reqPerSec.toFixed(0)} req/s, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms, non-200 ${result.requests - result.ok200}`,
      );
      await checkExact(ctx, `throughput ${target} round ${round + 1}`);
    }
  }
  return runs;
}

/** §1: key checks over HTTP, every design: warm-up, one connection, then the throughput rounds. */
export async function keyChecks(ctx: BenchContext): Promise<Record<Target, HttpTargetResult>> {
  await warmUp(ctx);
  const oneAtATime = await sequential(ctx);
  const runs = await throughput(ctx);
  const http = {} as Record<Target, HttpTargetResult>;
  const medianOf = (target: Target, pick: (l: LoadResult) => number) => median(runs[target].map(pick));
  for (const target of TARGETS) {
    const reqPerSec = medianOf(target, (l) => l.reqPerSec);
    const p50Ms = medianOf(target, (l) => l.latencyMs.p50);
    const p99Ms = medianOf(target, (l) => l.latencyMs.p99);
    http[target] = {
      runs: runs[target],
      reqPerSec,
      p50Ms,
      p99Ms,
      ratioToBaseline: {
        reqPerSec: reqPerSec / medianOf('baseline', (l) => l.reqPerSec),
        p50: p50Ms / medianOf('baseline', (l) => l.latencyMs.p50),
        p99: p99Ms / medianOf('baseline', (l) => l.latencyMs.p99),
      },
      sequential: oneAtATime[target],
    };
  }
  return http;
}
