import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { seedActiveKeys } from '../../services/accounts/key-seeds';
import { accountPartition, COUNTER_PREFIX, parseHourAttribute } from '../../services/usage/counter-keys';
import { drain, EXACT_TIMING, sumOf } from '../lib/bench-context';
import { dynamoFigures, pick } from '../lib/billing';
import type { PacedAnswer } from '../lib/paced-publisher';
import { type Counts, diffCounts } from '../lib/sdk-counter';
import { median } from '../lib/stats';
import type { ConsumerSnapshot, Transport, TransportExact } from '../lib/types';
import { dynamoItemSize, type Marshalled } from './item-size';
import { type LayoutContext, madeUpKeys, startMetering } from './layout-context';
import type { Layout } from './profiles';

/** The counter items one run wrote, as stored: their sizes and hour attributes. */
export interface CounterItems {
  readonly count: number;
  /** Item sizes (bench/layout/item-size.ts), bytes. */
  readonly medianBytes: number;
  readonly maxBytes: number;
  readonly minBytes: number;
  /** Items over 1 KB: a write to one bills ceil(size / 1 KB) units, which billing.ts does not count. */
  readonly over1KB: number;
  /** Hour attributes per item, fewest and most. */
  readonly hourAttributes: { readonly min: number; readonly max: number };
  /** Every item's hours sum to its `requests` (hours layout), or it has none (previous layout). */
  readonly hoursAsLaidOut: boolean;
}

export interface LayoutRun {
  readonly transport: Transport;
  readonly layout: Layout;
  readonly rate: number;
  readonly achievedPerSec: number;
  readonly durationSec: number;
  readonly events: number;
  readonly keys: number;
  readonly accounts: number;
  readonly zipfS: number;
  /** The metering process's DynamoDB requests, by operation (sdk-counter keys). */
  readonly dynamodb: Counts;
  readonly perEvent: {
    readonly writeRequests: number;
    /** As AWS bills them (billing.ts: 2 per transactional item, engine-reported units otherwise). */
    readonly writeUnits: number;
    readonly engineWriteUnits: number;
  };
  readonly metering: { readonly invocations: number; readonly records: number; readonly avgBatch: number };
  readonly drainMs: number;
  readonly exact: TransportExact;
  readonly items: CounterItems;
}

/** Every counter item (`DAY#…`) of these accounts, as stored (the raw client: marshalled values). */
export async function counterItems(ctx: LayoutContext, accounts: readonly string[]): Promise<Marshalled[]> {
  const items: Marshalled[] = [];
  for (const accountId of accounts) {
    let start: Record<string, never> | undefined;
    do {
      const page = await ctx.dynamo.send(
        new QueryCommand({
          TableName: ctx.usageTable,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :day)',
          ExpressionAttributeValues: {
            ':pk': { S: accountPartition(accountId) },
            ':day': { S: COUNTER_PREFIX },
          },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      items.push(...((page.Items ?? []) as Marshalled[]));
      start = page.LastEvaluatedKey as Record<string, never> | undefined;
    } while (start);
  }
  return items;
}

/** Sizes and hour attributes of counter items, and whether they are laid out as `layout` writes them. */
export function describeItems(items: readonly Marshalled[], layout: Layout): CounterItems {
  const sizes = items.map(dynamoItemSize).sort((a, b) => a - b);
  const hourCounts: number[] = [];
  let asLaidOut = true;
  for (const item of items) {
    let hours = 0;
    let houred = 0;
    for (const [name, value] of Object.entries(item)) {
      if (parseHourAttribute(name) === undefined) continue;
      hours++;
      houred += Number((value as { N?: string }).N ?? 0);
    }
    hourCounts.push(hours);
    const requests = Number((item.requests as { N?: string } | undefined)?.N ?? 0);
    if (layout === 'previous' ? hours > 0 : houred !== requests) asLaidOut = false;
  }
  return {
    count: items.length,
    medianBytes: sizes.length > 0 ? median(sizes) : 0,
    maxBytes: sizes.at(-1) ?? 0,
    minBytes: sizes[0] ?? 0,
    over1KB: sizes.filter((s) => s > 1024).length,
    hourAttributes: {
      min: hourCounts.length > 0 ? Math.min(...hourCounts) : 0,
      max: Math.max(0, ...hourCounts),
    },
    hoursAsLaidOut: asLaidOut && items.length > 0,
  };
}

/**
 * One transport with one counter layout, as the paced phase runs it (bench/phases/paced.ts):
 * events straight to a queue or stream of this run's own at `rate` a second from the producer
 * process, for made-up keys of this run alone (key records written first, with the orchestrator's
 * client), read by a metering process of its own whose SDK requests are counted from before the
 * first event until the last is counted; then the paced phase's exactness check, and the counter
 * items read back and sized.
 */
export async function layoutRun(
  ctx: LayoutContext,
  transport: Transport,
  layout: Layout,
): Promise<LayoutRun> {
  const s = ctx.settings;
  const { accounts, keys } = madeUpKeys(ctx, `${transport}-${layout}`, s.keys, s.accounts);
  await seedActiveKeys(ctx.documents, ctx.keysTable, keys, { name: 'bench', now: new Date() });
  const { metering, target } = await startMetering(ctx, transport, layout);
  try {
    const before = await metering.call<ConsumerSnapshot>('snapshot');
    const answer = await ctx.producer.call<PacedAnswer>('paced', {
      transport,
      target,
      keys,
      zipfS: s.zipfS,
      seed: 7,
      rate: s.rate,
      durationSec: s.durationSec,
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
    const after = await metering.call<ConsumerSnapshot>('snapshot');
    const dynamodb = pick(diffCounts(after.sdk, before.sdk), 'DynamoDB.');
    const d = dynamoFigures(dynamodb);
    const per = (value: number) => (events > 0 ? value / events : 0);
    const invocations = after.invocations - before.invocations;
    const records = after.records - before.records;
    const seconds = (answer.endedAt - answer.startedAt) / 1000;
    return {
      transport,
      layout,
      rate: s.rate,
      achievedPerSec: seconds > 0 ? events / seconds : 0,
      durationSec: s.durationSec,
      events,
      keys: s.keys,
      accounts: s.accounts,
      zipfS: s.zipfS,
      dynamodb,
      perEvent: {
        writeRequests: per(d.writeRequests),
        writeUnits: per(d.writeUnits),
        engineWriteUnits: per(d.engineWriteUnits),
      },
      metering: { invocations, records, avgBatch: invocations > 0 ? records / invocations : 0 },
      drainMs,
      exact,
      items: describeItems(await counterItems(ctx, accounts), layout),
    };
  } finally {
    await ctx.processes.stop(metering);
  }
}
