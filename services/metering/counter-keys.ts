/**
 * The usage table's key layout, owned by metering and used by everything that reads counters
 * (usage-reader.ts), so no one rebuilds `KEY#…` or slices a prefix off by hand:
 *  - `KEY#<keyId>` / `DAY#<yyyy-mm-dd>`: a key's requests that day
 *  - `KEY#<keyId>` / `TOTAL`: a key's all-time requests and last use
 *  - `ACCOUNT#<accountId>` / `DAY#<yyyy-mm-dd>`: an account's requests that day
 *  - `EVENT#<eventId>` / `EVENT`: "this event is counted", written in the same transaction as the
 *    counters it fed, and expired by TTL once the event could no longer be accepted anyway.
 */

/** A counter item's key. A type alias, not an interface, so it stays assignable to `Record<string, string>`. */
export type CounterKey = { pk: string; sk: string };

const KEY = 'KEY#';
const ACCOUNT = 'ACCOUNT#';
const DAY = 'DAY#';
const TOTAL = 'TOTAL';

export const keyPartition = (keyId: string): string => `${KEY}${keyId}`;
export const accountPartition = (accountId: string): string => `${ACCOUNT}${accountId}`;
export const daySortKey = (day: string): string => `${DAY}${day}`;

const keyDay = (keyId: string, day: string): CounterKey => ({ pk: keyPartition(keyId), sk: daySortKey(day) });
const keyTotal = (keyId: string): CounterKey => ({ pk: keyPartition(keyId), sk: TOTAL });
const accountDay = (accountId: string, day: string): CounterKey => ({
  pk: accountPartition(accountId),
  sk: daySortKey(day),
});

/** The counters every event adds to: its key's day and all-time totals, its account's day. */
export const counterKeys = { keyDay, keyTotal, accountDay };

/** The dedupe mark of one event (SQS path). */
export const eventMark = (eventId: string): CounterKey => ({ pk: `EVENT#${eventId}`, sk: 'EVENT' });

/** The day of a `DAY#<yyyy-mm-dd>` sort key. */
export function dayOf(sortKey: string): string {
  if (!sortKey.startsWith(DAY)) throw new Error(`not a day counter: ${sortKey}`);
  return sortKey.slice(DAY.length);
}

/** The key id of a `KEY#<keyId>` partition key. */
export function keyIdOf(partitionKey: string): string {
  if (!partitionKey.startsWith(KEY)) throw new Error(`not a key counter: ${partitionKey}`);
  return partitionKey.slice(KEY.length);
}
