import { describe, expect, it } from 'vitest';
import { newUsageEvent } from '../../contracts/usage-event';
import {
  type AcceptanceWindow,
  aggregateAccepted,
  DEFAULT_WINDOW,
  type InboundRecord,
  validateBatch,
} from '../../services/metering/batch';
import { inboundRecords } from '../../services/metering/records';
import { InvalidEventError } from '../../services/platform/errors';
import { sequenceOrderKey } from '../../services/usage/counter-updates';

const NOW = new Date('2026-11-21T00:00:30Z');
let n = 0;
const record = (body: unknown): InboundRecord => ({
  recordId: `m${n++}`,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const event = (keyId: string, at = NOW, accountId = 'acc') => newUsageEvent({ keyId, accountId, now: at });

// What the consumer does with a batch (consumer.ts): validate every record, then group the accepted ones.
function prepareBatch(records: readonly InboundRecord[], now: Date, window: AcceptanceWindow) {
  const { rejected, accepted } = validateBatch(records, now, window);
  return { rejected, aggregates: aggregateAccepted(accepted) };
}

describe('validateBatch, then aggregateAccepted', () => {
  it('groups events per key and UTC day, keeping each record exactly once', () => {
    const yesterday = new Date('2026-11-20T23:59:59.999Z');
    const records = [
      record(event('a')),
      record(event('a')),
      record(event('b')),
      record(event('a', yesterday)),
      record(event('a')),
    ];
    const { aggregates, rejected } = prepareBatch(records, NOW, DEFAULT_WINDOW);
    expect(rejected).toEqual([]);
    const summary = aggregates.map((a) => [a.aggregate.keyId, a.aggregate.day, a.aggregate.events.length]);
    expect(summary).toEqual([
      ['a', '2026-11-21', 3],
      ['b', '2026-11-21', 1],
      ['a', '2026-11-20', 1],
    ]);
    expect(aggregates.flatMap((a) => a.recordIds).sort()).toEqual(records.map((r) => r.recordId).sort());
  });

  it('rejects malformed, invalid, too old and future events with a reason, and counts the rest', () => {
    const good = record(event('a'));
    const records = [
      record('{not json'),
      record({ ...event('a'), v: 2 }),
      record({ ...event('a'), units: 0 }),
      record({ ...event('a'), extra: true }),
      record(event('a', new Date(NOW.getTime() - DEFAULT_WINDOW.lateMs - 1))),
      record(event('a', new Date(NOW.getTime() + DEFAULT_WINDOW.futureMs + 1))),
      good,
    ];
    const { aggregates, rejected } = prepareBatch(records, NOW, DEFAULT_WINDOW);
    expect(rejected.map((r) => r.reason)).toEqual([
      'invalid_json',
      'invalid_event',
      'invalid_event',
      'invalid_event',
      'too_old',
      'future',
    ]);
    for (const r of rejected) expect(r.detail.length).toBeGreaterThan(0);
    expect(aggregates.flatMap((a) => a.recordIds)).toEqual([good.recordId]);
  });

  it('accepts late events inside the window into their own day', () => {
    const late = new Date(NOW.getTime() - DEFAULT_WINDOW.lateMs + 60_000);
    const { aggregates } = prepareBatch([record(event('a', late))], NOW, DEFAULT_WINDOW);
    expect(aggregates[0]?.aggregate.day).toBe(late.toISOString().slice(0, 10));
  });
});

describe('inboundRecords', () => {
  it('reads SQS and Kinesis events into records with the id each source expects back', () => {
    const body = JSON.stringify(event('a'));
    expect(inboundRecords({ Records: [{ eventSource: 'aws:sqs', messageId: 'm-1', body }] })).toEqual([
      { recordId: 'm-1', body },
    ]);
    const kinesis = {
      Records: [
        {
          eventSource: 'aws:kinesis',
          eventID: 'shardId-000000000003:4959',
          eventSourceARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/usage',
          kinesis: { sequenceNumber: '4959', data: Buffer.from(body).toString('base64') },
        },
      ],
    };
    expect(inboundRecords(kinesis)).toEqual([
      {
        recordId: '4959',
        body,
        position: {
          streamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/usage',
          shardId: 'shardId-000000000003',
          sequenceNumber: '4959',
        },
      },
    ]);
  });

  it('refuses anything else with a named error', () => {
    expect(() => inboundRecords({ Records: [{ eventSource: 'aws:s3' }] })).toThrow(InvalidEventError);
    expect(() => inboundRecords(null)).toThrow(InvalidEventError);
  });
});

describe('sequenceOrderKey', () => {
  it('orders sequence numbers as numbers when DynamoDB compares the keys as strings', () => {
    const numbers = ['9', '10', '99', '100', '49590338271490256608559692538361571095921575989136588898'];
    const keys = numbers.map(sequenceOrderKey);
    expect([...keys].sort()).toEqual(keys);
    expect(sequenceOrderKey('10') > sequenceOrderKey('9')).toBe(true);
  });
});
