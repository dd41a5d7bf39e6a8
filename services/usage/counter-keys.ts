/**
 * The usage table's key layout, owned by metering and used by everything that reads counters
 * (usage-reader.ts), so no one rebuilds `ACCOUNT#…` or slices a prefix off by hand.
 *
 * One counter per key and UTC day, in its account's partition:
 *  - `ACCOUNT#<accountId>` / `DAY#<yyyy-mm-dd>#KEY#<keyId>`: a key's requests and units that day,
 *    and its last use (`lastUsedAt`).
 *    Each route an event of that key and day called adds to one more attribute of the same item,
 *    `route#<METHOD> <template>` (routeAttribute), and each UTC hour it happened in to `h<HH>`
 *    (hourAttribute): the splits by route and by hour cost no extra write.
 *  - `EVENT#<eventId>` / `EVENT`: "this event is counted" (SQS only), written in the same
 *    transaction as the counter it fed, and expired by TTL once the event could no longer be
 *    accepted anyway.
 *
 * An event adds to one item, whatever is read from it: an account's day is the sum of its keys'
 * items for that day, a key's all-time total and last use are derived from its day items. All of
 * an account's counters share its partition, so each of those is one strongly consistent Query.
 */

/** A counter item's key. A type alias, not an interface, so it stays assignable to `Record<string, string>`. */
export type CounterKey = { pk: string; sk: string };

const ACCOUNT = 'ACCOUNT#';
const DAY = 'DAY#';
const KEY = '#KEY#';
/** Sorts after `#`: `DAY#<day>$` is past every `DAY#<day>#KEY#…` of that day. */
const END_OF_DAY = '$';

export const accountPartition = (accountId: string): string => `${ACCOUNT}${accountId}`;

/** The counter every event of one key on one UTC day adds to. */
export const keyDayCounter = (accountId: string, keyId: string, day: string): CounterKey => ({
  pk: accountPartition(accountId),
  sk: `${DAY}${day}${KEY}${keyId}`,
});

/** Sort-key bounds (inclusive) of every counter of the days `from` to `to`. */
export function dayRange(from: string, to: string): { from: string; to: string } {
  return { from: `${DAY}${from}`, to: `${DAY}${to}${END_OF_DAY}` };
}

/** Every counter item's sort key starts with this. */
export const COUNTER_PREFIX = DAY;

/** The day and key of a counter's sort key. */
export function parseCounterSortKey(sortKey: string): { day: string; keyId: string } {
  const at = sortKey.indexOf(KEY);
  if (!sortKey.startsWith(DAY) || at < 0) throw new Error(`not a key-day counter: ${sortKey}`);
  return { day: sortKey.slice(DAY.length, at), keyId: sortKey.slice(at + KEY.length) };
}

/** The dedupe mark of one event (SQS path). */
export const eventMark = (eventId: string): CounterKey => ({ pk: `EVENT#${eventId}`, sk: 'EVENT' });

const ROUTE = 'route#';

/**
 * The counter item's attribute holding one route's requests. A template may hold any printable
 * character but never a space (contracts/usage-event.ts), and a method none either, so the first
 * space after the method splits them again.
 */
export const routeAttribute = (method: string, route: string): string => `${ROUTE}${method} ${route}`;

/** The method and route of a counter item's attribute name, or undefined for any other attribute. */
export function parseRouteAttribute(name: string): { method: string; route: string } | undefined {
  if (!name.startsWith(ROUTE)) return undefined;
  const space = name.indexOf(' ', ROUTE.length);
  if (space < 0) return undefined;
  return { method: name.slice(ROUTE.length, space), route: name.slice(space + 1) };
}

const HOUR = 'h';
const HOUR_PATTERN = /^h([01]\d|2[0-3])$/;

/**
 * The counter item's attribute holding one UTC hour's requests (`h00`…`h23`), by the event's own
 * time: the hour split costs no extra item and no extra write, only a few bytes per hour used.
 * UTC hours make a day in any whole-hour time zone exact, DST days included (docs/metering.md).
 */
export const hourAttribute = (ts: number): string =>
  `${HOUR}${String(new Date(ts).getUTCHours()).padStart(2, '0')}`;

/** The UTC hour (0–23) of an `hourAttribute` name, or undefined for any other attribute. */
export function parseHourAttribute(name: string): number | undefined {
  return HOUR_PATTERN.test(name) ? Number(name.slice(HOUR.length)) : undefined;
}

const PERIOD = 'PERIOD#';
const PRODUCER = '#P#';

/** The month (`yyyy-mm`) a UTC day (`yyyy-mm-dd`) belongs to: the account-period item it adds to. */
export const monthOf = (day: string): string => day.slice(0, 7);

/** The attribute of an account-period item holding one day's requests: `d06` for the 6th. */
export const dayAttribute = (day: string): string => `d${day.slice(8, 10)}`;

/**
 * An account's requests in one UTC month, and each of its days (`dayAttribute`): what a quota
 * check reads, one item however many keys and days the account has. Written in the same write
 * as the key-day counters it sums (a transaction on SQS, a watermarked update on Kinesis).
 */
export const periodCounter = (accountId: string, month: string): CounterKey => ({
  pk: accountPartition(accountId),
  sk: `${PERIOD}${month}`,
});

/**
 * The share of one account's month that one gate container (its producer id, `pid` on the event)
 * published: the container subtracts it from what it admitted to know what the counters do not
 * hold yet (services/gate/limits.ts). Expires with the late window after its month.
 */
export const producerCounter = (accountId: string, month: string, producerId: string): CounterKey => ({
  pk: accountPartition(accountId),
  sk: `${PERIOD}${month}${PRODUCER}${producerId}`,
});

/** Sorts before `TOTAL#…`: the account's fold mark, then one item per key (UsageReader.keyTotals). */
export const KEY_TOTALS_PREFIX = 'TOTAL';
const KEY_TOTAL = 'TOTAL#';

/**
 * A key's requests and last use on every day up to its `through` (a closed day), folded from its
 * day counters by the reader; without a key, the account's mark: every key's days up to its
 * `through` are folded.
 */
export const keyTotal = (accountId: string, keyId?: string): CounterKey => ({
  pk: accountPartition(accountId),
  sk: keyId === undefined ? KEY_TOTALS_PREFIX : `${KEY_TOTAL}${keyId}`,
});

/** The key of a `keyTotal` sort key, or undefined for the account's mark. */
export function parseKeyTotalSortKey(sortKey: string): string | undefined {
  return sortKey.startsWith(KEY_TOTAL) ? sortKey.slice(KEY_TOTAL.length) : undefined;
}
