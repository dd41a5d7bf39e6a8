import { type BenchContext, consumerSnapshot, load, snapshot } from '../lib/bench-context';
import { dynamoFigures, pick } from '../lib/billing';
import { type Counts, diffCounts, sumCounts } from '../lib/sdk-counter';
import type { Summary } from '../lib/stats';
import {
  type BenchSettings,
  type ConsumerSnapshot,
  type ExactCheck,
  type LoadResult,
  type ServerSnapshot,
  TARGETS,
  type Target,
  TRANSPORTS,
  type Transport,
  type WriteRun,
} from '../lib/types';
import { checkExact } from './exactness';

/** Requests of a write run: the baseline's counts per request do not depend on the volume. */
export function eventsFor(settings: BenchSettings, target: Target): number {
  return target === 'baseline' ? settings.baselineWriteEvents : settings.writeEvents;
}

/** Per-request figures of one write run, from the requests its processes sent (sdk-counter keys). */
function writeRunOf(
  target: Target,
  load: LoadResult,
  exact: ExactCheck,
  perKeyExact: boolean | null,
  dynamodb: Counts,
  transport: Counts,
  consumer?: { invocations: number; records: number; durationMs: Summary; lagMs: Summary },
): WriteRun {
  const n = (key: string, counts: Counts = dynamodb) => counts[key] ?? 0;
  const events = load.ok200;
  const per = (value: number) => (events > 0 ? value / events : 0);
  const d = dynamoFigures(dynamodb);
  const transportRequests =
    target === 'sqs'
      ? n('SQS.SendMessage.billedRequests', transport) +
        n('SQS.ReceiveMessage', transport) +
        n('SQS.DeleteMessageBatch', transport) +
        n('SQS.SendMessageBatch', transport)
      : 0;
  const marks = n('DynamoDB.TransactWriteItems.Put');
  return {
    target,
    events,
    durationSec: load.durationSec,
    reqPerSec: load.reqPerSec,
    dynamodb,
    transport,
    perEvent: {
      writeRequests: per(d.writeRequests),
      writeUnits: per(d.writeUnits),
      engineWriteUnits: per(d.engineWriteUnits),
      readRequests: per(d.readRequests),
      readUnits: per(d.readUnits),
      transportRequests: per(transportRequests),
      payloadUnits: per(target === 'kinesis' ? n('Kinesis.PutRecord.payloadUnits', transport) : 0),
      meteringInvocations: per(consumer?.invocations ?? 0),
    },
    ...(consumer
      ? {
          metering: {
            invocations: consumer.invocations,
            records: consumer.records,
            avgBatch: consumer.invocations > 0 ? consumer.records / consumer.invocations : 0,
            durationMs: consumer.durationMs,
            lagMs: consumer.lagMs,
            markItemBytes: marks > 0 ? n('DynamoDB.TransactWriteItems.Put.bytes') / marks : 0,
          },
        }
      : {}),
    exact,
    perKeyExact,
  };
}

async function baselineWriteRun(ctx: BenchContext): Promise<WriteRun> {
  const before = await snapshot(ctx, 'baseline');
  const result = await load(ctx, 'baseline', { amount: eventsFor(ctx.settings, 'baseline') });
  const exact = await checkExact(ctx, 'writes baseline');
  const producerCounts = diffCounts((await snapshot(ctx, 'baseline')).sdk, before.sdk);
  return writeRunOf('baseline', result, exact, null, pick(producerCounts, 'DynamoDB.'), {});
}

/** Both pipelines at once, each with its key API's and its consumer's requests counted. */
async function tollgateWriteRuns(ctx: BenchContext): Promise<Record<Transport, WriteRun>> {
  const before = await Promise.all(
    TRANSPORTS.map(async (t) => ({
      server: await snapshot(ctx, t),
      consumer: await consumerSnapshot(ctx, t),
    })),
  );
  await Promise.all(TRANSPORTS.map((t) => ctx.metering[t].call('resetSamples')));
  const loads = await Promise.all(TRANSPORTS.map((t) => load(ctx, t, { amount: ctx.settings.writeEvents })));
  const exact = await checkExact(ctx, 'writes sqs + kinesis');
  const runs = {} as Record<Transport, WriteRun>;
  for (const [i, t] of TRANSPORTS.entries()) {
    const was = before[i] as { server: ServerSnapshot; consumer: ConsumerSnapshot };
    const consumer = await consumerSnapshot(ctx, t);
    const producerCounts = diffCounts((await snapshot(ctx, t)).sdk, was.server.sdk);
    const consumerCounts = diffCounts(consumer.sdk, was.consumer.sdk);
    const service = t === 'kinesis' ? 'Kinesis.' : 'SQS.';
    const own = exact.transports[t];
    runs[t] = writeRunOf(
      t,
      loads[i] as LoadResult,
      exact,
      // Each transport's own keys and accounts: every one moved by exactly its 200s.
      own !== undefined && own.keysWrong === 0 && own.accountsWrong === 0,
      sumCounts(pick(producerCounts, 'DynamoDB.'), pick(consumerCounts, 'DynamoDB.')),
      sumCounts(pick(producerCounts, service), pick(consumerCounts, service)),
      {
        invocations: consumer.invocations - was.consumer.invocations,
        records: consumer.records - was.consumer.records,
        durationMs: consumer.durationMs,
        lagMs: consumer.lagMs,
      },
    );
  }
  return runs;
}

/**
 * §3: the baseline alone, then both Tollgate pipelines at once: they share no queue, stream, key
 * API or consumer process (only DynamoDB Local), and the consumers, not the load, set the pace.
 */
export async function writeAmplification(ctx: BenchContext): Promise<Record<Target, WriteRun>> {
  const { settings, log } = ctx;
  log(`writes baseline: ${eventsFor(settings, 'baseline')} requests over ${settings.keys} keys`);
  const baselineWrites = await baselineWriteRun(ctx);
  log(
    `writes sqs + kinesis at once: ${settings.writeEvents} requests each over ${settings.keys} keys (Zipf ${settings.zipfS})`,
  );
  const writes: Record<Target, WriteRun> = { baseline: baselineWrites, ...(await tollgateWriteRuns(ctx)) };
  for (const target of TARGETS) {
    const w = writes[target];
    log(
      `  ${target}: ${w.events} events, ${w.perEvent.writeRequests.toFixed(3)} write requests and ${w.perEvent.writeUnits.toFixed(2)} write units per event`,
    );
  }
  return writes;
}
