import { DEFAULT_LEDGER_FLUSH } from '../../contracts/config';
import { seedActiveKeys } from '../../services/accounts/key-seeds';
import { type BenchContext, consumerSnapshot, drain, EXACT_TIMING, sumOf } from '../lib/bench-context';
import { consumerSqsBilled, dynamoFigures, pick } from '../lib/billing';
import type { PacedAnswer } from '../lib/paced-publisher';
import { ms } from '../lib/report/format';
import { diffCounts } from '../lib/sdk-counter';
import { type PacedRun, TRANSPORTS, type Transport } from '../lib/types';
import { checkExact } from './exactness';

/** This run's accounts and keys for one transport at one rate: made up, used by no other run. */
function madeUpKeys(ctx: BenchContext, transport: Transport, rate: number, ledgerFlush?: string) {
  const p = ctx.settings.paced;
  const tag = `${ctx.run}-${transport}-r${rate}${ledgerFlush === undefined ? '' : `-${ledgerFlush}`}`;
  const accounts = Array.from({ length: p.accounts }, (_, j) => `bench-${tag}-a${j}`);
  const keys = Array.from({ length: p.keys }, (_, i) => ({
    keyId: `bench-${tag}-k${i}`,
    accountId: accounts[i % p.accounts] as string,
  }));
  return { accounts, keys };
}

/**
 * Events straight to the transport at `rate` a second (the producer process), for keys and
 * accounts of this run alone (made up, with key records written first: metering counts only
 * an event whose key its account holds); the metering process's requests counted from before
 * the first event until the last is counted.
 */
async function pacedRun(
  ctx: BenchContext,
  transport: Transport,
  rate: number,
  durationSec: number,
  ledgerFlush?: string,
): Promise<PacedRun> {
  const p = ctx.settings.paced;
  const { accounts, keys } = madeUpKeys(ctx, transport, rate, ledgerFlush);
  // Written with the orchestrator's client, so the metering process's request counts do not include them.
  await seedActiveKeys(ctx.documents, ctx.keysTable, keys, { name: 'bench', now: new Date() });
  const consumerBefore = await consumerSnapshot(ctx, transport);
  await ctx.metering[transport].call('resetSamples');
  const answer = await ctx.producer.call<PacedAnswer>('paced', {
    transport,
    target: transport === 'sqs' ? ctx.resources.queueUrl : ctx.resources.streamName,
    keys,
    zipfS: p.zipfS,
    seed: 7,
    rate,
    durationSec,
  });
  const stored = new Map(keys.map((k, i) => [k.keyId, answer.stored[i] ?? 0]));
  const events = sumOf(stored.values());
  const drainMs = await drain(
    answer.endedAt,
    async () => events,
    () => ctx.ledger.total(accounts),
  );
  const exact = await ctx.ledger.check(
    {
      transport,
      accounts,
      keyAccount: new Map(keys.map((k) => [k.keyId, k.accountId])),
      answered: async () => stored,
    },
    EXACT_TIMING,
  );
  const consumerAfter = await consumerSnapshot(ctx, transport);
  const counts = diffCounts(consumerAfter.sdk, consumerBefore.sdk);
  const dynamodb = pick(counts, 'DynamoDB.');
  const transportCounts = pick(counts, transport === 'sqs' ? 'SQS.' : 'Kinesis.');
  const d = dynamoFigures(dynamodb);
  const invocations = consumerAfter.invocations - consumerBefore.invocations;
  const records = consumerAfter.records - consumerBefore.records;
  const per = (value: number) => (events > 0 ? value / events : 0);
  const seconds = (answer.endedAt - answer.startedAt) / 1000;
  return {
    transport,
    ...(ledgerFlush === undefined ? {} : { ledgerFlush }),
    rate,
    achievedPerSec: seconds > 0 ? events / seconds : 0,
    durationSec,
    events,
    keys: p.keys,
    accounts: p.accounts,
    zipfS: p.zipfS,
    producer: answer.stats,
    dynamodb,
    transportCounts,
    perEvent: {
      writeRequests: per(d.writeRequests),
      writeUnits: per(d.writeUnits),
      engineWriteUnits: per(d.engineWriteUnits),
      consumerTransportRequests: per(transport === 'sqs' ? consumerSqsBilled(transportCounts) : 0),
      meteringInvocations: per(invocations),
    },
    metering: {
      invocations,
      records,
      avgBatch: invocations > 0 ? records / invocations : 0,
      durationMs: consumerAfter.durationMs,
      lagMs: consumerAfter.lagMs,
      ...(consumerAfter.counterLagMs ? { counterLagMs: consumerAfter.counterLagMs } : {}),
      duplicates: consumerAfter.duplicates - consumerBefore.duplicates,
    },
    drainMs,
    exact,
  };
}

/** §6: events straight to each transport at each steady rate, one run after the other. */
export async function paced(ctx: BenchContext): Promise<Record<Transport, PacedRun[]>> {
  const { settings, log } = ctx;
  const runs: Record<Transport, PacedRun[]> = { sqs: [], kinesis: [] };
  const one = async (transport: Transport, rate: number, durationSec: number, ledgerFlush?: string) => {
    const profile = ledgerFlush === undefined ? '' : ` (ledger ${ledgerFlush})`;
    log(
      `paced ${transport}${profile}: ${rate} events/s for ${durationSec} s over ${settings.paced.keys} keys (Zipf ${settings.paced.zipfS})`,
    );
    const run = await pacedRun(ctx, transport, rate, durationSec, ledgerFlush);
    runs[transport].push(run);
    log(
      `  ${transport}${profile} @ ${rate}/s: ${run.achievedPerSec.toFixed(0)} events/s, ${run.perEvent.writeUnits.toFixed(3)} write units and ${run.perEvent.writeRequests.toFixed(3)} write requests per event, batches of ${run.metering.avgBatch.toFixed(1)}, lag p95 ${run.metering.lagMs.p95.toFixed(0)} ms (counters ${ms(run.metering.counterLagMs?.p95, 0)} ms), drained in ${run.drainMs.toFixed(0)} ms, exact ${run.exact.ok ? 'yes' : `NO (${run.exact.mismatches.join('; ')})`}`,
    );
  };
  for (const transport of TRANSPORTS) {
    for (const { rate, durationSec } of settings.paced.runs) await one(transport, rate, durationSec);
  }
  for (const { rate, durationSec, ledgerFlush } of settings.paced.ledgerProfiles ?? []) {
    await ctx.metering.sqs.call('useLedgerFlush', { profile: ledgerFlush });
    try {
      await one('sqs', rate, durationSec, ledgerFlush);
    } finally {
      await ctx.metering.sqs.call('useLedgerFlush', { profile: DEFAULT_LEDGER_FLUSH });
    }
  }
  await checkExact(ctx, 'paced');
  return runs;
}
