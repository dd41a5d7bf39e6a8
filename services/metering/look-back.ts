import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import type { StreamPosition } from './batch';

export interface EarlierCopyQuery {
  /** Where the resent copy is. */
  position: StreamPosition;
  eventId: string;
  /** When key-api made its first attempt (the copy's `resent`), epoch ms. */
  since: number;
}

/** Answers whether a resent event's first copy reached the stream before it. */
export interface LookBack {
  earlierCopyExists(query: EarlierCopyQuery): Promise<boolean>;
}

/** The stream name in `arn:aws:kinesis:<region>:<account>:stream/<name>`. */
export function streamNameOf(streamArn: string): string {
  const at = streamArn.indexOf(':stream/');
  if (at < 0) throw new Error(`not a Kinesis stream ARN: ${streamArn}`);
  return streamArn.slice(at + ':stream/'.length);
}

function eventIdOf(data: Uint8Array | undefined): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(data ?? new Uint8Array()).toString('utf8')) as { id?: unknown };
    return typeof parsed.id === 'string' ? parsed.id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads a shard back from shortly before key-api's first attempt up to the resent copy. A first
 * copy that was stored has the same partition key, so it is in the same shard, at a lower sequence
 * number, and arrived after the first attempt began. Only resent copies are looked up, which makes
 * this the rare path: a publish timed out or failed on the server side.
 */
export class KinesisLookBack implements LookBack {
  readonly #kinesis: KinesisClient;
  readonly #marginMs: number;
  readonly #maxPages: number;
  readonly #onGiveUp: (query: EarlierCopyQuery) => void;

  constructor(options: {
    kinesis: KinesisClient;
    /** Clock difference allowed between key-api and Kinesis's arrival timestamps. @default 30 s */
    marginMs?: number;
    /** Pages of up to 1,000 records read before giving up. @default 100 */
    maxPages?: number;
    /** Called when the copy could not be reached within `maxPages`; it is then counted. */
    onGiveUp?: (query: EarlierCopyQuery) => void;
  }) {
    this.#kinesis = options.kinesis;
    this.#marginMs = options.marginMs ?? 30_000;
    this.#maxPages = options.maxPages ?? 100;
    this.#onGiveUp = options.onGiveUp ?? (() => {});
  }

  async earlierCopyExists(query: EarlierCopyQuery): Promise<boolean> {
    const { position, eventId } = query;
    const before = BigInt(position.sequenceNumber);
    const start = await this.#kinesis.send(
      new GetShardIteratorCommand({
        StreamName: streamNameOf(position.streamArn),
        ShardId: position.shardId,
        ShardIteratorType: 'AT_TIMESTAMP',
        Timestamp: new Date(Math.min(query.since - this.#marginMs, Date.now() - 1000)),
      }),
    );
    let iterator = start.ShardIterator;
    for (let page = 0; iterator && page < this.#maxPages; page++) {
      const out = await this.#kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      for (const record of out.Records ?? []) {
        if (BigInt(record.SequenceNumber ?? '0') >= before) return false;
        if (eventIdOf(record.Data) === eventId) return true;
      }
      // The copy itself is in the shard, so reaching the end without it means there is no more.
      if ((out.Records ?? []).length === 0 && out.MillisBehindLatest === 0) return false;
      iterator = out.NextShardIterator;
    }
    // Counting it may count twice; refusing it would stall the shard on one record for good.
    this.#onGiveUp(query);
    return false;
  }
}
