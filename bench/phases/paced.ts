import { seedActiveKeys } from '../../services/accounts/key-seeds';
import { type BenchContext, consumerSnapshot, drain, EXACT_TIMING, sumOf } from '../lib/bench-context';
import { consumerSqsBilled, dynamoFigures, pick } from '../lib/billing';
import type { PacedAnswer } from '../lib/paced-publisher';
import { diffCounts } from '../lib/sdk-counter';
import { type PacedRun, TRANSPORTS, type Transport } from '../lib/types';
import { checkExact } from './exactness';

/** This run's accounts and keys for one transport at one rate: made up, used by no other run. */
function madeUpKeys(ctx: BenchContext, transport: Transport, rate: number) {
  const p = ctx.settings.paced;
  const tag = `${ctx.run}-${transport}-r${rate}`;
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
): Promise<PacedRun> {
  const p = ctx.settings.paced;
  const { accounts, keys } = madeUpKeys(ctx, transport, rate);
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
  for (const transport of TRANSPORTS) {
    for (const { rate, durationSec } of settings.paced.runs) {
      log(
        `paced ${transport}: ${rate} events/s for ${durationSec} s over ${settings.paced.keys} keys (Zipf ${settings.paced.zipfS})`,
      );
      const run = await pacedRun(ctx, transport, rate, durationSec);
      runs[transport].push(run);
      log(
        `  ${transport} @ ${rate}/s: ${run.achievedPerSec.toFixed(0)} events/s, ${run.perEvent.writeUnits.toFixed(3)} write units and ${run.perEvent.writeRequests.toFixed(3)} write requests per event, batches of ${run.metering.avgBatch.toFixed(1)}, exact ${run.exact.ok ? 'yes' : `NO (${run.exact.mismatches.join('; ')})`}`,
      );
    }
  }
  await checkExact(ctx, 'paced');
  return runs;
}
