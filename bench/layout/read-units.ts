import { Logger } from '@aws-lambda-powertools/logger';
import { utcDay } from '../../contracts/usage-event';
import { seedActiveKeys } from '../../services/accounts/key-seeds';
import { KeyStore } from '../../services/accounts/key-store';
import { documentClient } from '../../services/platform/aws-clients';
import { keyDayCounter } from '../../services/usage/counter-keys';
import type { OrderedIncrement } from '../../services/usage/counter-updates';
import { UsageReader } from '../../services/usage/usage-reader';
import { type Granularity, windowCells } from '../../services/usage/usage-series';
import { UsageStore } from '../../services/usage/usage-store';
import type { UserApiDeps } from '../../services/user-api/env';
import { answerUsage } from '../../services/user-api/usage-answer';
import { dynamoFigures, pick } from '../lib/billing';
import { diffCounts, snapshotCounts } from '../lib/sdk-counter';
import { type LayoutContext, madeUpKeys } from './layout-context';
import { queryUnits, type ReadPage, recordReads } from './read-recorder';
import { type CounterItems, counterItems, describeItems } from './write-run';

const DAY_MS = 24 * 3600_000;
const HOUR_MS = 3600_000;
const ANSWERS: ReadonlyArray<{ granularity: Granularity; tz: string }> = [
  { granularity: 'day', tz: 'UTC' },
  { granularity: 'hour', tz: 'UTC' },
  { granularity: 'day', tz: 'America/New_York' },
  { granularity: 'hour', tz: 'America/New_York' },
];

/** One answer's reads: the usage table's (the counters) and the keys table's (the key list). */
export interface ReadAnswer {
  readonly granularity: Granularity;
  readonly tz: string;
  readonly from: string;
  readonly to: string;
  readonly keys: number;
  readonly cells: number;
  readonly total: number;
  /** What the seeded hours hold in the window's UTC span: the answer must say the same. */
  readonly expectedTotal: number;
  readonly counters: {
    readonly requests: number;
    readonly items: number;
    readonly bytes: number;
    /** As DynamoDB Local reported (ReturnConsumedCapacity TOTAL). */
    readonly engineUnits: number;
    /** ceil(page bytes / 4 KB) per strongly consistent page. */
    readonly clientUnits: number;
    /** The same pages without their hour attributes: what the previous layout's items would bill. */
    readonly clientUnitsWithoutHours: number;
  };
  readonly keyList: { readonly requests: number; readonly engineUnits: number; readonly clientUnits: number };
  /** sdk-counter's figures over the whole answer (both tables), the cross-check of the recorder's. */
  readonly sdkCounter: { readonly readRequests: number; readonly readUnits: number };
}

export interface ReadUnits {
  /** How the counters were written (and why not through the transports). */
  readonly seededWith: string;
  readonly keys: number;
  readonly days: number;
  readonly seededEvents: number;
  /** The seeded counters: whole days, traffic in many hours. */
  readonly items: CounterItems;
  readonly answers: ReadAnswer[];
}

/**
 * The requests of the key of rank `rank` (1 = hottest) in hour `h` of day `d`: Zipf by key, the
 * hottest keys busy all day and the coldest 8 hours, a daily curve, and days unlike each other
 * (so a zone's days hold other sums than UTC's).
 */
function hourCount(rank: number, d: number, h: number): number {
  const activeHours = rank <= 5 ? 24 : rank <= 15 ? 16 : 8;
  if (h < 24 - activeHours) return 0;
  const curve = 0.3 + 0.7 * Math.sin((Math.PI * (h + 0.5)) / 24);
  return Math.max(1, Math.round((200 / rank) * curve * (1 + (d % 4) / 4)));
}

/**
 * Writes `days` + 1 UTC days of counters for `keys` through UsageStore.applyInOrder (the Kinesis
 * path's own update, counterIncrements and all): 30 days back is far outside the acceptance
 * window (contracts/config.ts DEFAULT_ACCEPTANCE_WINDOW, 48 h), so events that old would be
 * refused by metering; the store takes them as given. Answers every (ts, count) written.
 */
async function seedCounters(
  ctx: LayoutContext,
  keys: ReadonlyArray<{ keyId: string; accountId: string }>,
  firstDay: string,
  days: number,
): Promise<Array<{ ts: number; count: number }>> {
  const store = new UsageStore({ client: ctx.documents, table: ctx.usageTable });
  const written: Array<{ ts: number; count: number }> = [];
  const increments: OrderedIncrement[] = [];
  const first = Date.parse(`${firstDay}T00:00:00Z`);
  let sequence = 0;
  for (let d = 0; d < days; d++) {
    const day = utcDay(first + d * DAY_MS);
    keys.forEach(({ keyId, accountId }, i) => {
      const entries: OrderedIncrement['entries'] = [];
      for (let h = 0; h < 24; h++) {
        const ts = first + d * DAY_MS + h * HOUR_MS + 60_000;
        const count = hourCount(i + 1, d, h);
        if (count > 0) written.push({ ts, count });
        for (let n = 0; n < count; n++) {
          entries.push({ sequenceNumber: String(++sequence).padStart(20, '0'), units: 1, ts });
        }
      }
      increments.push({
        counter: keyDayCounter(accountId, keyId, day),
        keyId,
        shardId: 'shardId-000000000000',
        entries,
      });
    });
  }
  const now = new Date();
  for (let i = 0; i < increments.length; i += 8) {
    await Promise.all(increments.slice(i, i + 8).map((increment) => store.applyInOrder(increment, now)));
  }
  return written;
}

const sum = <T>(rows: readonly T[], of: (row: T) => number) =>
  rows.reduce((total, row) => total + of(row), 0);

/** What the seeded hours hold inside a window's cells (a UTC hour counts where it starts). */
function expectedIn(
  written: ReadonlyArray<{ ts: number; count: number }>,
  from: string,
  to: string,
  tz: string,
) {
  const window = windowCells({ from, to, timeZone: tz, granularity: 'hour' });
  if ('tooMany' in window) throw new Error(`${from}..${to} is too long a window`);
  const start = window.cells[0]?.start ?? 0;
  const end = window.cells.at(-1)?.end ?? start;
  return sum(
    written.filter((w) => w.ts >= start && w.ts < end),
    (w) => w.count,
  );
}

/**
 * Read units of the 30-day `groupBy=key` answer: one account with `read.keys` keys and counters on
 * `read.days` days (and the day after, which a zone west of UTC reads the first hours of), answered
 * by the user API's own code (answerUsage) for days and hours, in UTC and in New York, over clients
 * whose every read is recorded (read-recorder.ts) and counted (sdk-counter.ts, installed in this
 * process before the call).
 */
export async function readUnits(ctx: LayoutContext): Promise<ReadUnits> {
  const { keys: keyCount, days } = ctx.settings.read;
  const { accounts, keys } = madeUpKeys(ctx, 'read', keyCount, 1);
  const accountId = accounts[0] as string;
  await seedActiveKeys(ctx.documents, ctx.keysTable, keys, { name: 'bench', now: new Date() });
  // Two days back, so the day after the window is a closed one too.
  const to = utcDay(Date.now() - 2 * DAY_MS);
  const from = utcDay(Date.parse(`${to}T00:00:00Z`) - (days - 1) * DAY_MS);
  ctx.log(`reads: seeding ${keyCount} keys × ${days + 1} days of counters (${from} on) with UsageStore`);
  const written = await seedCounters(ctx, keys, from, days + 1);
  const items = describeItems(await counterItems(ctx, accounts), 'hours');

  const { endpoints } = ctx.stack;
  const aws = {
    region: endpoints.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    endpoints: { dynamodb: endpoints.dynamodb },
  };
  const usageClient = documentClient(aws);
  const keysClient = documentClient(aws);
  ctx.processes.onStop(() => {
    usageClient.destroy();
    keysClient.destroy();
  });
  const counterPages = recordReads(usageClient);
  const keyPages = recordReads(keysClient);
  // answerUsage reads only these of its dependencies for a window with a `tz` and no refusals.
  const deps = {
    store: new KeyStore({
      client: keysClient,
      accountsTable: ctx.accountsTable,
      keysTable: ctx.keysTable,
      keyPrefix: ctx.stack.env.TOLLGATE_KEY_PREFIX ?? 'tg',
    }),
    usage: new UsageReader({ client: usageClient, table: ctx.usageTable }),
    clock: { now: () => new Date() },
    logger: new Logger({ serviceName: 'bench-layout', logLevel: 'WARN' }),
  } as Partial<UserApiDeps> as UserApiDeps;

  const answers: ReadAnswer[] = [];
  for (const { granularity, tz } of ANSWERS) {
    const [c0, k0] = [counterPages.length, keyPages.length];
    const before = snapshotCounts();
    const answer = await answerUsage(deps, accountId, { from, to, granularity, tz, groupBy: 'key' });
    const sdk = dynamoFigures(pick(diffCounts(snapshotCounts(), before), 'DynamoDB.'));
    const counters: ReadPage[] = counterPages.slice(c0);
    const keyList: ReadPage[] = keyPages.slice(k0);
    answers.push({
      granularity,
      tz,
      from,
      to,
      keys: answer.keys?.length ?? 0,
      cells: answer.series.length,
      total: answer.total,
      expectedTotal: expectedIn(written, from, to, tz),
      counters: {
        requests: counters.length,
        items: sum(counters, (p) => p.items),
        bytes: sum(counters, (p) => p.bytes),
        engineUnits: sum(counters, (p) => p.engineUnits),
        clientUnits: sum(counters, (p) => queryUnits(p.bytes, p.consistent)),
        clientUnitsWithoutHours: sum(counters, (p) => queryUnits(p.bytesWithoutHours, p.consistent)),
      },
      keyList: {
        requests: keyList.length,
        engineUnits: sum(keyList, (p) => p.engineUnits),
        clientUnits: sum(keyList, (p) => queryUnits(p.bytes, p.consistent)),
      },
      sdkCounter: { readRequests: sdk.readRequests, readUnits: sdk.readUnits },
    });
  }
  return {
    seededWith:
      'UsageStore.applyInOrder (the Kinesis path’s counter update): 30 days back is outside the 48 h acceptance window',
    keys: keyCount,
    days,
    seededEvents: sum(written, (w) => w.count),
    items,
    answers,
  };
}
