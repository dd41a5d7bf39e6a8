import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { batchGetAll, callDynamo, classified } from '../platform/dynamodb';
import { decodeJournal, encodeJournal } from './journal-codec';
import type {
  ApplyOutcome,
  ArchivedRange,
  CounterDelta,
  FlushClaim,
  LedgerHead,
  LedgerStore,
} from './ledger-port';

/**
 * The SQS ledger on the usage table (ledger-port.ts): one head item per ledger, a DONE item, one
 * journal item per committed batch and one archive item per idle producer, beside the counters the
 * flushes add to. Every write is a single-item request with a condition, never a transaction: each
 * costs the units of its own item only, and each race is decided by DynamoDB's conditional write.
 *
 *   head     LEDGER#<name> / HEAD         ver, seq, pend {j: id}, fl {frm, to, at, owner}, prod {pid: range}
 *   done     LEDGER#<name> / DONE         through
 *   journal  LEDGER#<name>#J#<id> / J      d (the deltas, JSON), expiresAt
 *   archive  LEDGER#<name>#P#<pid> / ARCH  range, ver, expiresAt
 *   counter  (its own key)                + wm#<name> (the last flush it took), wm#<name>#<n> per extra chunk
 */

/** The name of the SQS ledger's items and of its watermark on the counters (`wm#sqs`). */
export const SQS_LEDGER_NAME = 'sqs';

/** How long a journal is kept after it is written: days past any flush, for an operator to look at. */
const JOURNAL_TTL_MS = 7 * 24 * 3_600_000;

/**
 * Attributes one counter update adds or sets at most: each costs about 12 characters of its
 * expression, so 100 stay far below DynamoDB's 4 KB expression limit.
 */
const ATTRIBUTES_PER_UPDATE = 100;

export class DynamoLedgerStore implements LedgerStore {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #name: string;
  readonly #archiveTtlMs: number;
  readonly #now: () => number;

  /**
   * @param options.name the ledger's name (`sqs`, or `sqs0`… when sharded by producer): its items'
   *   prefix and the counters' watermark attribute
   * @param options.archiveTtlMs how long an archive outlives its producer's last event: past the
   *   late window and the clock-skew allowance, after which no copy of its events can be accepted
   */
  constructor(options: {
    client: DynamoDBDocumentClient;
    table: string;
    name: string;
    archiveTtlMs: number;
    now?: () => number;
  }) {
    this.#db = options.client;
    this.#table = options.table;
    this.#name = options.name;
    this.#archiveTtlMs = options.archiveTtlMs;
    this.#now = options.now ?? Date.now;
  }

  get #partition(): string {
    return `LEDGER#${this.#name}`;
  }

  /** The counters' watermark attribute of this ledger (chunk 0), as the redrive and tests read it. */
  get watermarkAttribute(): string {
    return `wm#${this.#name}`;
  }

  async readHead(): Promise<LedgerHead> {
    const item = await this.#get({ pk: this.#partition, sk: 'HEAD' });
    if (!item) return { ver: 0, seq: 0, pend: {}, prod: {} };
    const pend: Record<number, string> = {};
    for (const [j, id] of Object.entries((item.pend ?? {}) as Record<string, string>)) pend[Number(j)] = id;
    return {
      ver: Number(item.ver),
      seq: Number(item.seq),
      pend,
      ...(item.fl === undefined ? {} : { fl: item.fl as FlushClaim }),
      prod: { ...((item.prod ?? {}) as Record<string, string>) },
    };
  }

  async readDone(): Promise<number> {
    const item = await this.#get({ pk: this.#partition, sk: 'DONE' });
    return item === undefined ? 0 : Number(item.through);
  }

  async commitHead(expectedVer: number, next: LedgerHead): Promise<boolean> {
    const pend = Object.fromEntries(Object.entries(next.pend).map(([j, id]) => [String(j), id]));
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            pk: this.#partition,
            sk: 'HEAD',
            ver: next.ver,
            seq: next.seq,
            pend,
            prod: next.prod,
            ...(next.fl === undefined ? {} : { fl: next.fl }),
          },
          ConditionExpression: expectedVer === 0 ? 'attribute_not_exists(pk)' : 'ver = :v',
          ...(expectedVer === 0 ? {} : { ExpressionAttributeValues: { ':v': expectedVer } }),
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw classified(error);
    }
  }

  async putJournal(id: string, deltas: readonly CounterDelta[]): Promise<void> {
    await callDynamo(() =>
      this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            pk: `${this.#partition}#J#${id}`,
            sk: 'J',
            // One string: a journal's size is its write units (journal-codec.ts).
            d: encodeJournal(deltas),
            expiresAt: Math.ceil((this.#now() + JOURNAL_TTL_MS) / 1000),
          },
        }),
      ),
    );
  }

  async getJournals(ids: readonly string[]): Promise<Map<string, CounterDelta[]>> {
    const prefix = `${this.#partition}#J#`;
    const items = await batchGetAll(
      this.#db,
      this.#table,
      ids.map((id) => ({ pk: `${prefix}${id}`, sk: 'J' })),
    );
    return new Map(
      items.map((item) => [String(item.pk).slice(prefix.length), decodeJournal(String(item.d))]),
    );
  }

  async getArchives(pids: readonly string[]): Promise<Map<string, ArchivedRange>> {
    const prefix = `${this.#partition}#P#`;
    const items = await batchGetAll(
      this.#db,
      this.#table,
      pids.map((pid) => ({ pk: `${prefix}${pid}`, sk: 'ARCH' })),
    );
    return new Map(
      items.map((item) => [
        String(item.pk).slice(prefix.length),
        { range: String(item.range), ver: Number(item.ver) },
      ]),
    );
  }

  async putArchive(pid: string, archive: ArchivedRange): Promise<void> {
    try {
      await this.#db.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            pk: `${this.#partition}#P#${pid}`,
            sk: 'ARCH',
            range: archive.range,
            ver: archive.ver,
            expiresAt: Math.ceil((this.#now() + this.#archiveTtlMs) / 1000),
          },
          ConditionExpression: 'attribute_not_exists(pk) OR ver < :v',
          ExpressionAttributeValues: { ':v': archive.ver },
        }),
      );
    } catch (error) {
      // A newer archive is there (written by a later head): it is the one to keep.
      if (error instanceof ConditionalCheckFailedException) return;
      throw classified(error);
    }
  }

  /**
   * One UpdateItem per chunk of ATTRIBUTES_PER_UPDATE attributes, each chunk guarded by a watermark
   * of its own (`wm#<name>` for the first, `wm#<name>#<n>` after), so a delta too wide for one
   * expression is still applied exactly once, chunk by chunk, however often the flush is re-run.
   */
  async applyCounter(delta: CounterDelta, through: number): Promise<ApplyOutcome> {
    let applied = false;
    for (const [n, chunk] of chunksOf(delta).entries()) {
      const names: Record<string, string> = {
        '#wm': n === 0 ? this.watermarkAttribute : `${this.watermarkAttribute}#${n}`,
      };
      const values: Record<string, unknown> = {
        ':through': through,
        ':now': new Date(this.#now()).toISOString(),
      };
      const adds = chunk.adds.map(([name, amount], i) => {
        names[`#a${i}`] = name;
        values[`:a${i}`] = amount;
        return `#a${i} :a${i}`;
      });
      const sets = chunk.sets.map(([name, value], i) => {
        names[`#s${i}`] = name;
        values[`:s${i}`] = value;
        return `#s${i} = :s${i}`;
      });
      try {
        await this.#db.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: delta.counter,
            UpdateExpression: `${adds.length > 0 ? `ADD ${adds.join(', ')} ` : ''}SET ${[...sets, 'updatedAt = :now', '#wm = :through'].join(', ')}`,
            ConditionExpression: 'attribute_not_exists(#wm) OR #wm < :through',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        );
        applied = true;
      } catch (error) {
        // This flush (or a later one) reached the chunk already: a re-run or a racing taker.
        if (error instanceof ConditionalCheckFailedException) continue;
        throw classified(error);
      }
    }
    return applied ? 'applied' : 'skipped';
  }

  async advanceDone(to: number): Promise<void> {
    try {
      await this.#db.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: this.#partition, sk: 'DONE' },
          UpdateExpression: 'SET through = :to',
          ConditionExpression: 'attribute_not_exists(through) OR through < :to',
          ExpressionAttributeValues: { ':to': to },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return;
      throw classified(error);
    }
  }

  async #get(key: Record<string, string>): Promise<Record<string, unknown> | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#table, Key: key, ConsistentRead: true })),
    );
    return out.Item;
  }
}

/**
 * A delta's attributes in a fixed order (by name), cut into chunks of ATTRIBUTES_PER_UPDATE: the
 * same delta always gives the same chunks, so each chunk's watermark guards the same attributes on
 * every run. Sets ride with the first chunk.
 */
function chunksOf(delta: CounterDelta): { adds: [string, number][]; sets: [string, string | number][] }[] {
  const adds = Object.entries(delta.adds).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const sets = Object.entries(delta.sets).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const chunks: { adds: [string, number][]; sets: [string, string | number][] }[] = [];
  const firstRoom = Math.max(1, ATTRIBUTES_PER_UPDATE - sets.length);
  chunks.push({ adds: adds.slice(0, firstRoom), sets });
  for (let i = firstRoom; i < adds.length; i += ATTRIBUTES_PER_UPDATE) {
    chunks.push({ adds: adds.slice(i, i + ATTRIBUTES_PER_UPDATE), sets: [] });
  }
  return chunks;
}
