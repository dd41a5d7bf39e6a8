import { type BenchResults, TARGET_LABELS, TARGETS } from '../types';
import { int, lines, ms, table } from './format';

/** A consumer's pace in events a second: its average batch over its mean handler time. */
export function consumerPace(r: BenchResults, t: 'sqs' | 'kinesis'): number {
  const mt = r.writes[t].metering;
  return mt && mt.durationMs.mean > 0 ? mt.avgBatch / (mt.durationMs.mean / 1000) : Number.NaN;
}

/** §3: requests and write units per request through each real pipeline. */
export function writesSection(r: BenchResults): string {
  const s = r.settings;
  const pace = (t: 'sqs' | 'kinesis') => consumerPace(r, t);
  const w = r.writes;
  return lines(
    '## 3. Write amplification',
    '',
    `${int(s.writeEvents)} requests per transport through the real pipeline (key-api → SQS or Kinesis → the local stack's poller with its default batch settings → the metering handler), keys Zipf(${s.zipfS}) over ${s.keys} keys in ${s.accounts} accounts, ${s.connections} connections, counted at every client. The two transports ran at the same time (separate key APIs, queue and stream, consumer processes; one DynamoDB Local); the baseline ran ${int(s.baselineWriteEvents)} requests alone (its counts per request do not change with volume).`,
    '',
    table(
      ['per request', ...TARGETS.map((t) => TARGET_LABELS[t])],
      [
        ['events (200s)', ...TARGETS.map((t) => int(w[t].events))],
        ['DynamoDB write requests', ...TARGETS.map((t) => w[t].perEvent.writeRequests.toFixed(3))],
        ['write units (AWS billing)', ...TARGETS.map((t) => w[t].perEvent.writeUnits.toFixed(3))],
        [
          'DynamoDB read requests (read units)',
          ...TARGETS.map(
            (t) => `${w[t].perEvent.readRequests.toFixed(3)} (${w[t].perEvent.readUnits.toFixed(3)})`,
          ),
        ],
        [
          'transport requests (SQS billed) / PUT units (Kinesis)',
          '—',
          w.sqs.perEvent.transportRequests.toFixed(3),
          w.kinesis.perEvent.payloadUnits.toFixed(3),
        ],
        [
          'metering invocations (avg batch)',
          '—',
          ...(['sqs', 'kinesis'] as const).map(
            (t) => `${w[t].perEvent.meteringInvocations.toFixed(4)} (${ms(w[t].metering?.avgBatch, 1)})`,
          ),
        ],
        [
          'accepted → counted, p50 / p95 ms (under this load)',
          'synchronous',
          ...(['sqs', 'kinesis'] as const).map(
            (t) => `${ms(w[t].metering?.lagMs.p50, 0)} / ${ms(w[t].metering?.lagMs.p95, 0)}`,
          ),
        ],
        [
          'consumer pace, events/s (batch ÷ handler time)',
          '—',
          ...(['sqs', 'kinesis'] as const).map((t) => int(pace(t))),
        ],
        ['load, req/s', ...TARGETS.map((t) => int(w[t].reqPerSec))],
        [
          'exact (total; per key)',
          ...TARGETS.map(
            (t) =>
              `${w[t].exact.ok ? 'yes' : 'NO'}; ${w[t].perKeyExact === null ? '—' : w[t].perKeyExact ? 'yes' : 'NO'}`,
          ),
        ],
      ],
      ['---', '---:', '---:', '---:'],
    ),
    '',
    'Requests by operation (all processes):',
    '',
    ...TARGETS.map(
      (t) =>
        `- ${TARGET_LABELS[t]}: ${Object.entries({ ...w[t].dynamodb, ...w[t].transport })
          .filter(([k]) => !/\.(bytes|capacityUnits|billedRequests|payloadUnits|Put|Update)$/.test(k))
          .map(([k, v]) => `${k} ${int(v)}`)
          .join(', ')}`,
    ),
  );
}

/** §4: from a 200 to usage showing it, on an idle pipeline. */
export function freshnessSection(r: BenchResults): string {
  const s = r.settings;
  return lines(
    '## 4. Freshness',
    '',
    `${s.freshnessSamples} requests per transport (both transports probed at the same time, each on a key of its own), one at a time on an otherwise idle pipeline: from the 200 received to \`GET /usage?keyId=…\` counting it, polled every ${s.pollIntervalMs} ms. The baseline returns its count in the answer itself.`,
    '',
    table(
      ['transport', 'p50 ms', 'p95 ms', 'max ms'],
      (['sqs', 'kinesis'] as const).map((t) => {
        const f = r.freshness[t].visibleMs;
        return [TARGET_LABELS[t], ms(f.p50, 0), ms(f.p95, 0), ms(f.max, 0)];
      }),
    ),
  );
}
