import type { Owner } from '../lib/accounts';
import { type BenchContext, post, STALL_TIMEOUT_MS, sleep } from '../lib/bench-context';
import { summarize } from '../lib/stats';
import { type FreshnessResult, TRANSPORTS, type Transport } from '../lib/types';
import { checkExact } from './exactness';

/**
 * One request at a time on the probe key: from its 200 to GET /usage (strongly consistent, as
 * the user API reads) showing it, polled every pollIntervalMs.
 */
async function probe(ctx: BenchContext, transport: Transport): Promise<FreshnessResult> {
  const { settings, users, firstDay } = ctx;
  const url = ctx.servers[transport].ready.endpoint;
  const { probeKey } = ctx.sides[transport];
  const probeOwner = (ctx.sides[transport].httpOwners[0] as { owner: Owner }).owner;
  let expected = await users.usageTotal(probeOwner, firstDay, probeKey.id);
  const samples: number[] = [];
  for (let i = 0; i < settings.freshnessSamples; i++) {
    const status = await post(url, probeKey.key);
    const answered = performance.now();
    if (status !== 200) throw new Error(`freshness probe answered ${status}`);
    expected++;
    for (;;) {
      const total = await users.usageTotal(probeOwner, firstDay, probeKey.id);
      if (total >= expected) break;
      if (performance.now() - answered > STALL_TIMEOUT_MS) throw new Error('probe was never counted');
      await sleep(settings.pollIntervalMs);
    }
    samples.push(performance.now() - answered);
    // A pause of varying length, so probes do not line up with the pollers' rhythm.
    await sleep(50 + ((i * 37) % 150));
  }
  return {
    transport,
    samples: samples.length,
    pollIntervalMs: settings.pollIntervalMs,
    visibleMs: summarize(samples),
  };
}

/** §4: both transports probed at once, each on a key of its own. */
export async function freshness(ctx: BenchContext): Promise<Record<Transport, FreshnessResult>> {
  ctx.log(`freshness: ${ctx.settings.freshnessSamples} samples per transport, both at once`);
  const [sqs, kinesis] = await Promise.all(TRANSPORTS.map((t) => probe(ctx, t)));
  const results = { sqs, kinesis } as Record<Transport, FreshnessResult>;
  for (const transport of TRANSPORTS) {
    ctx.log(
      `  ${transport}: p50 ${results[transport].visibleMs.p50.toFixed(0)} ms, p95 ${results[transport].visibleMs.p95.toFixed(0)} ms`,
    );
  }
  await checkExact(ctx, 'freshness');
  return results;
}
