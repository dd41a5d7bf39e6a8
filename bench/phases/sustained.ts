import { generateApiKey } from '../../services/accounts/api-key';
import {
  answeredBy,
  type BenchContext,
  consumerSnapshot,
  drain,
  EXACT_TIMING,
  post,
  snapshot,
  sumOf,
} from '../lib/bench-context';
import type { Scope } from '../lib/exact';
import {
  type LagSplit,
  type PublishCheck,
  type ServerSnapshot,
  type SustainedRun,
  TRANSPORTS,
  type Transport,
  type WrkResult,
} from '../lib/types';
import { runWrk } from '../lib/wrk';
import { checkExact } from './exactness';
import { publishCheck } from './publish-check';

/** The sustained phase's accounts and keys of one transport alone. */
function sustainedScope(ctx: BenchContext, transport: Transport): Scope {
  const keyAccount = new Map(ctx.sides[transport].sustainedKeys.map((k) => [k.id, k.accountId]));
  return {
    transport,
    accounts: ctx.sides[transport].sustainedAccounts,
    keyAccount,
    answered: async () => answeredBy(await snapshot(ctx, transport), keyAccount),
  };
}

/** Each key once (cache and JIT warm, as in the other phases), and those counted first. */
async function warm(ctx: BenchContext, transport: Transport, scope: Scope): Promise<void> {
  const url = ctx.servers[transport].ready.endpoint;
  for (const key of ctx.sides[transport].sustainedKeys) {
    const status = await post(url, key.key);
    if (status !== 200) throw new Error(`${transport} answered ${status} to a warm-up`);
  }
  const warmed = await ctx.ledger.check(scope, { ...EXACT_TIMING, holdMs: 0 });
  if (!warmed.ok) throw new Error(`sustained ${transport}: warm-up not counted exactly`);
}

/**
 * wrk's own tally against key-api's: wrk stops with requests in flight, which key-api may still
 * answer 200; so no key above key-api's count, and the gap at most one per connection.
 */
function clientTally(
  wrk: WrkResult,
  served: { before: ServerSnapshot; after: ServerSnapshot; acceptedAll: number },
  scope: Scope,
  connections: number,
): SustainedRun['client'] {
  const wrk200 = sumOf(Object.values(wrk.ok200ByKey));
  let agrees = wrk.unparsed200 === 0;
  for (const [keyId, n] of Object.entries(wrk.ok200ByKey)) {
    const count = (served.after.ok200ByKey[keyId] ?? 0) - (served.before.ok200ByKey[keyId] ?? 0);
    if (!scope.keyAccount.has(keyId) || n > count) agrees = false;
  }
  const gap = served.acceptedAll - wrk200;
  if (gap < 0 || gap > connections) agrees = false;
  return { ok200: wrk200, gap, agrees };
}

/**
 * wrk against one key API for the phase's length; then the backlog the moment it ended
 * (key-api's 200s − counters), the time until it drained, the lags counted during and after the
 * load, and the phase's keys and accounts checked alone.
 */
async function sustainedRun(ctx: BenchContext, transport: Transport): Promise<SustainedRun> {
  const s = ctx.settings.sustained;
  const side = ctx.sides[transport];
  const scope = sustainedScope(ctx, transport);
  const url = ctx.servers[transport].ready.endpoint;
  await warm(ctx, transport, scope);
  // Well formed (prefix, length, checksum) and unknown: past the checksum, to the index, 401.
  const bogusKeys = Array.from({ length: s.bogusKeys }, () => generateApiKey(ctx.keyPrefix).key);

  const accepted = (snap: ServerSnapshot) => sumOf(answeredBy(snap, scope.keyAccount).values());
  const counted = () => ctx.ledger.total(side.sustainedAccounts);
  const before = await snapshot(ctx, transport);
  const consumerBefore = await consumerSnapshot(ctx, transport);
  const acceptedBefore = accepted(before);
  const countedBefore = await counted();
  await ctx.metering[transport].call('resetSamples');

  const { result: wrk, endedAt } = await runWrk({
    url,
    keys: side.sustainedKeys.map((k) => k.key),
    bogusKeys,
    bogusShare: s.bogusShare,
    connections: s.connections,
    threads: s.threads,
    durationSec: s.durationSec,
    timeoutSec: s.timeoutSec,
  });
  const [atEnd, countedAtEndTotal] = await Promise.all([snapshot(ctx, transport), counted()]);
  const acceptedAtEnd = accepted(atEnd) - acceptedBefore;
  const countedAtEnd = countedAtEndTotal - countedBefore;
  const drainMs = await drain(
    endedAt,
    async () => accepted(await snapshot(ctx, transport)),
    async () => (await counted()) - countedBefore + acceptedBefore,
  );
  const lags = await ctx.metering[transport].call<LagSplit>('lags', { splitAt: endedAt });
  const exact = await ctx.ledger.check(scope, EXACT_TIMING);
  const after = await snapshot(ctx, transport);
  const consumerAfter = await consumerSnapshot(ctx, transport);

  const acceptedAll = accepted(after) - acceptedBefore;
  const client = clientTally(wrk, { before, after, acceptedAll }, scope, s.connections);
  const invocations = consumerAfter.invocations - consumerBefore.invocations;
  const records = consumerAfter.records - consumerBefore.records;
  return {
    transport,
    connections: s.connections,
    threads: s.threads,
    durationSec: wrk.durationSec,
    keys: side.sustainedKeys.length,
    accounts: side.sustainedAccounts.length,
    bogusKeys: bogusKeys.length,
    bogusShare: s.bogusShare,
    wrk,
    reqPerSec: wrk.requests / wrk.durationSec,
    acceptedPerSec: client.ok200 / wrk.durationSec,
    acceptedAtEnd,
    accepted: acceptedAll,
    countedAtEnd,
    backlogAtEnd: acceptedAtEnd - countedAtEnd,
    drainMs,
    lagDuringMs: lags.until,
    lagAfterMs: lags.after,
    consumer: {
      invocations,
      records,
      avgBatch: invocations > 0 ? records / invocations : 0,
      duplicates: consumerAfter.duplicates - consumerBefore.duplicates,
    },
    client,
    exact,
  };
}

/** §5 and §7: sustained load, one transport after the other; the publish path check after Kinesis. */
export async function sustained(
  ctx: BenchContext,
): Promise<{ sustained: Record<Transport, SustainedRun>; publishCheck: PublishCheck }> {
  const { settings, log } = ctx;
  const ss = settings.sustained;
  const runs = {} as Record<Transport, SustainedRun>;
  let check: PublishCheck | undefined;
  for (const transport of TRANSPORTS) {
    log(
      `sustained ${transport}: wrk ${ss.durationSec} s, ${ss.connections} connections, ${ss.keys} keys in ${ss.accounts} accounts, ${Math.round(ss.bogusShare * 100)}% bogus keys`,
    );
    const run = await sustainedRun(ctx, transport);
    runs[transport] = run;
    log(
      `  ${transport}: ${run.acceptedPerSec.toFixed(0)} accepted/s (${run.reqPerSec.toFixed(0)} req/s), lag p50/p95 during ${run.lagDuringMs.p50.toFixed(0)}/${run.lagDuringMs.p95.toFixed(0)} ms, backlog at end ${run.backlogAtEnd}, drained in ${run.drainMs.toFixed(0)} ms, exact ${run.exact.ok ? 'yes' : `NO (${run.exact.mismatches.join('; ')})`}`,
    );
    if (transport === 'kinesis') {
      log(`publish check: bare PutRecord, ${ss.connections} in flight, ${settings.publishCheckSec} s`);
      check = await publishCheck(ctx, run);
      log(
        `  bare PutRecord ${check.bare.reqPerSec.toFixed(0)}/s against key-api ${check.keyApi.acceptedPerSec.toFixed(0)}/s (${check.ratio.toFixed(2)}×)`,
      );
    }
  }
  await checkExact(ctx, 'sustained');
  if (!check) throw new Error('the publish check did not run');
  return { sustained: runs, publishCheck: check };
}
