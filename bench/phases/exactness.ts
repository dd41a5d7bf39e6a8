import { totalBaselineCount } from '../baseline/table';
import {
  type BenchContext,
  EXACT_TIMING,
  HOLD_MS,
  snapshot,
  sumOf,
  transportScope,
} from '../lib/bench-context';
import { type ExactCheck, TRANSPORTS, type Transport, type TransportExact } from '../lib/types';

/**
 * "Every 200 is counted once", for each transport alone (its key API's 200s by key against its
 * own accounts' counters, per key, per account and in total, once its pipeline has drained;
 * then held a moment to catch a late double count), both transports at once; and the baseline,
 * which counts synchronously: its table's Count total against its 200s.
 */
async function waitExact(ctx: BenchContext, phase: string): Promise<ExactCheck> {
  const begun = Date.now();
  const [sqsExact, kinesisExact] = await Promise.all(
    TRANSPORTS.map((t) => ctx.ledger.check(transportScope(ctx, t), EXACT_TIMING)),
  );
  const baselineAnswered = (await snapshot(ctx, 'baseline')).statuses['200'] ?? 0;
  const baselineCounted = await totalBaselineCount(ctx.dynamo, ctx.resources.baselineTable);
  const transports = { sqs: sqsExact, kinesis: kinesisExact } as Record<Transport, TransportExact>;
  const baselineOk = baselineCounted === baselineAnswered;
  return {
    phase,
    answered200: sumOf(TRANSPORTS.map((t) => transports[t].answered)) + baselineAnswered,
    counted: sumOf(TRANSPORTS.map((t) => transports[t].counted)) + baselineCounted,
    ok: TRANSPORTS.every((t) => transports[t].ok) && baselineOk,
    settledMs: Math.max(...TRANSPORTS.map((t) => transports[t].settledMs), Date.now() - begun - HOLD_MS),
    transports,
    baseline: { answered: baselineAnswered, counted: baselineCounted, ok: baselineOk },
  };
}

/** The exactness check after `phase`: kept with the run's checks, and logged. */
export async function checkExact(ctx: BenchContext, phase: string): Promise<ExactCheck> {
  const result = await waitExact(ctx, phase);
  ctx.exactChecks.push(result);
  const part = (t: Transport) => {
    const e = result.transports[t];
    return e ? `${t} ${e.counted}/${e.answered}${e.ok ? '' : ` MISMATCH (${e.mismatches.join('; ')})`}` : '';
  };
  ctx.log(
    `  exact (${phase}): ${TRANSPORTS.map(part).join(', ')}, baseline ${result.baseline?.counted}/${result.baseline?.answered}${result.ok ? '' : '  <-- MISMATCH'}`,
  );
  return result;
}
