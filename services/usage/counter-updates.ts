import { ANY_METHOD, ANY_ROUTE } from '../../contracts/usage-event';
import { type CounterKey, hourAttribute, routeAttribute } from './counter-keys';

/**
 * The shapes of the writes to the usage counters: what metering hands the store (aggregates,
 * transaction parts, ordered increments) and how an update names routes and shard watermarks.
 * Pure: the store (usage-store.ts) sends them.
 */

export interface AggregateEvent {
  id: string;
  ts: number;
  units: number;
  /** The route template and method it called; `*` / `*` when absent (contracts/usage-event.ts). */
  route?: string;
  method?: string;
  /** The gate container that published it (its producer id), when the event names one. */
  pid?: string;
}

/**
 * The per-route part of a counter update: one `ADD` of each route's request count to its attribute
 * of the (key, day) counter (counter-keys.ts routeAttribute), in the same UpdateItem as the totals.
 */
export function routeIncrements(events: readonly { route?: string; method?: string }[]): {
  adds: string;
  names: Record<string, string>;
  values: Record<string, number>;
} {
  const byRoute = new Map<string, number>();
  for (const event of events) {
    const name = routeAttribute(event.method ?? ANY_METHOD, event.route ?? ANY_ROUTE);
    byRoute.set(name, (byRoute.get(name) ?? 0) + 1);
  }
  const names: Record<string, string> = {};
  const values: Record<string, number> = {};
  const adds = [...byRoute].map(([name, count], i) => {
    names[`#rt${i}`] = name;
    values[`:rt${i}`] = count;
    return `#rt${i} :rt${i}`;
  });
  return { adds: adds.map((add) => `, ${add}`).join(''), names, values };
}

/**
 * The per-hour part of a counter update: one `ADD` of each UTC hour's request count to its
 * attribute of the (key, day) counter (counter-keys.ts hourAttribute), in the same UpdateItem as
 * the totals. At most 24 attributes, so it never needs a chunk of its own (byRouteChunks).
 */
export function hourIncrements(events: readonly { ts: number }[]): {
  adds: string;
  names: Record<string, string>;
  values: Record<string, number>;
} {
  const byHour = new Map<string, number>();
  for (const event of events) {
    const name = hourAttribute(event.ts);
    byHour.set(name, (byHour.get(name) ?? 0) + 1);
  }
  const names: Record<string, string> = {};
  const values: Record<string, number> = {};
  const adds = [...byHour].map(([name, count], i) => {
    names[`#hr${i}`] = name;
    values[`:hr${i}`] = count;
    return `#hr${i} :hr${i}`;
  });
  return { adds: adds.map((add) => `, ${add}`).join(''), names, values };
}

/** The route and hour parts of one counter update together: what both transports ADD. */
export function counterIncrements(events: readonly { ts: number; route?: string; method?: string }[]) {
  const routes = routeIncrements(events);
  const hours = hourIncrements(events);
  return {
    adds: `${routes.adds}${hours.adds}`,
    names: { ...routes.names, ...hours.names },
    values: { ...routes.values, ...hours.values },
  };
}

/** Whose counter an aggregate adds to: one key on one UTC day, in its account. */
export interface CounterOwner {
  keyId: string;
  accountId: string;
  day: string;
}

/** Every event of one key on one UTC day in a batch: what one counter write adds. */
export interface Aggregate extends CounterOwner {
  events: AggregateEvent[];
}

/** TransactWriteItems takes at most 100 actions. */
export const MAX_TRANSACTION_ITEMS = 100;

/** One aggregate's share of one transaction: its counter's increment and these events' marks. */
export interface TransactionPart {
  owner: CounterOwner;
  events: AggregateEvent[];
  /** The records these events came in (a record repeated in the batch rides with its first copy). */
  recordIds: string[];
}

export interface ApplyResult {
  /** Events counted by this call. */
  counted: number;
  /** Events that had been counted before (redelivery, producer retry): skipped. */
  duplicates: number;
  units: number;
  /** TransactWriteItems requests sent, including ones cancelled for duplicates or conflicts. */
  writeRequests: number;
}

/** What one shard's batch adds to one counter, its entries in ascending sequence order. */
export interface OrderedIncrement {
  counter: CounterKey;
  keyId: string;
  shardId: string;
  entries: { sequenceNumber: string; units: number; ts: number; route?: string; method?: string }[];
}

/** What one shard's batch adds to one account-period item, or to one producer's share of it. */
export interface OrderedPeriodIncrement {
  counter: CounterKey;
  shardId: string;
  /** A producer item (each entry's `pid` is its producer), or else the account's period item. */
  producer: boolean;
  entries: { sequenceNumber: string; accountId: string; units: number; ts: number; pid?: string }[];
}

/**
 * The most route attributes one counter update adds: each costs about 14 characters of its
 * expression (`, #rt12 :rt12`), so 100 stay far below DynamoDB's 4 KB expression limit.
 */
export const MAX_ROUTES_PER_UPDATE = 100;

/** Consecutive runs of entries, each calling at most MAX_ROUTES_PER_UPDATE distinct routes. */
export function byRouteChunks<E extends { route?: string; method?: string }>(entries: readonly E[]): E[][] {
  const chunks: E[][] = [];
  let chunk: E[] = [];
  let routes = new Set<string>();
  for (const entry of entries) {
    const name = routeAttribute(entry.method ?? ANY_METHOD, entry.route ?? ANY_ROUTE);
    if (!routes.has(name) && routes.size === MAX_ROUTES_PER_UPDATE) {
      chunks.push(chunk);
      chunk = [];
      routes = new Set();
    }
    routes.add(name);
    chunk.push(entry);
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

export interface OrderedResult {
  /** Entries added by this call. */
  applied: number;
  /** Entries at or below the counter's watermark: added by an earlier delivery, skipped. */
  skipped: number;
  writeRequests: number;
}

/**
 * Kinesis sequence numbers are decimal strings of up to 128 digits; DynamoDB compares strings
 * byte by byte. Prefixing the length makes that order the numeric one.
 */
export function sequenceOrderKey(sequenceNumber: string): string {
  return `${String(sequenceNumber.length).padStart(3, '0')}${sequenceNumber}`;
}

/** The attribute a counter keeps its watermark for one shard in (applyInOrder); the redrive reads it. */
export const watermarkAttribute = (shardId: string): string => `seq#${shardId}`;
