import { z } from 'zod';
import { DEFAULT_ACCEPTANCE_WINDOW } from '../../contracts/config';
import { type UsageEvent, usageEventSchema, utcDay } from '../../contracts/usage-event';
import type { PreparedAggregate } from '../usage/transactions';

/** Where a record sits in an ordered stream (Kinesis): its shard and sequence number. */
export interface StreamPosition {
  streamArn: string;
  shardId: string;
  sequenceNumber: string;
}

/** One queue or stream record, whatever the transport. */
export interface InboundRecord {
  /** What the event source wants back for a partial failure: SQS messageId, Kinesis sequence number. */
  recordId: string;
  body: string;
  /** Kinesis only: records of an ordered stream are guarded by sequence number, not by marks. */
  position?: StreamPosition;
}

/** A record that passed validation, with the event it carries. */
export interface AcceptedRecord {
  record: InboundRecord;
  event: UsageEvent;
}

/**
 * Why a record is refused. The first four are the record's own fault; `unknown_key` and
 * `account_mismatch` are provenance (services/metering/provenance.ts): the event names a key its
 * account does not hold, e.g. a record forged or replayed with another account's id.
 */
export type RejectReason =
  | 'invalid_json'
  | 'invalid_event'
  | 'too_old'
  | 'future'
  | 'unknown_key'
  | 'account_mismatch';

export interface Rejected {
  record: InboundRecord;
  reason: RejectReason;
  detail: string;
}

export interface AcceptanceWindow {
  /** Events older than this (by event time) are refused: their day is closed. */
  lateMs: number;
  /** Events dated further ahead than this (clock skew allowance) are refused. */
  futureMs: number;
}

export const DEFAULT_WINDOW: AcceptanceWindow = DEFAULT_ACCEPTANCE_WINDOW;

/**
 * Every record either accepted (schema, window) or rejected with a reason: nothing is dropped.
 * {@link aggregateAccepted} then groups the accepted ones into counter writes.
 */
export function validateBatch(
  records: readonly InboundRecord[],
  now: Date,
  window: AcceptanceWindow,
): { rejected: Rejected[]; accepted: AcceptedRecord[] } {
  const rejected: Rejected[] = [];
  const accepted: AcceptedRecord[] = [];
  for (const record of records) {
    let json: unknown;
    try {
      json = JSON.parse(record.body);
    } catch {
      rejected.push({ record, reason: 'invalid_json', detail: 'the record body is not JSON' });
      continue;
    }
    const parsed = usageEventSchema.safeParse(json);
    if (!parsed.success) {
      rejected.push({ record, reason: 'invalid_event', detail: z.prettifyError(parsed.error) });
      continue;
    }
    const event = parsed.data;
    if (event.ts < now.getTime() - window.lateMs) {
      rejected.push({
        record,
        reason: 'too_old',
        detail: `event time ${new Date(event.ts).toISOString()} is past the late window`,
      });
      continue;
    }
    if (event.ts > now.getTime() + window.futureMs) {
      rejected.push({
        record,
        reason: 'future',
        detail: `event time ${new Date(event.ts).toISOString()} is in the future`,
      });
      continue;
    }
    accepted.push({ record, event });
  }
  return { rejected, accepted };
}

/** Groups accepted records per (key, UTC day): one aggregate is one set of counter writes. */
export function aggregateAccepted(accepted: readonly AcceptedRecord[]): PreparedAggregate[] {
  const byKeyDay = new Map<string, PreparedAggregate>();
  for (const { record, event } of accepted) {
    const day = utcDay(event.ts);
    // The account too: two claims on one key id must never share a counter (provenance refuses
    // the false one before this, but an aggregate keyed by key alone would bill the first's account).
    const id = `${event.accountId}\u0000${event.keyId}\u0000${day}`;
    let prepared = byKeyDay.get(id);
    if (!prepared) {
      prepared = {
        aggregate: { keyId: event.keyId, accountId: event.accountId, day, events: [] },
        recordIds: [],
      };
      byKeyDay.set(id, prepared);
    }
    prepared.aggregate.events.push({
      id: event.id,
      ts: event.ts,
      units: event.units,
      ...(event.route === undefined ? {} : { route: event.route }),
      ...(event.method === undefined ? {} : { method: event.method }),
      ...(event.pid === undefined ? {} : { pid: event.pid }),
    });
    prepared.recordIds.push(record.recordId);
  }
  return [...byKeyDay.values()];
}
