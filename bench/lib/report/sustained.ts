import { DEFAULT_LEDGER_FLUSH } from '../../../contracts/config';
import { type BenchResults, TARGET_LABELS, TRANSPORTS } from '../types';
import { int, lines, ms, ratio, table } from './format';

/** §5: wrk against each transport's key API, backlog, drain and exactness; none in older results. */
export function sustainedSection(r: BenchResults): string | undefined {
  if (!r.sustained) return undefined;
  const ss = r.settings.sustained;
  return lines(
    '## 5. Sustained load, per transport',
    '',
    `wrk (bench/wrk/keys.lua) against each transport's key API, one transport after the other: ${ss.connections} connections, ${ss.threads} threads, ${ss.durationSec} s; a random key per request from ${ss.keys} keys in ${ss.accounts} accounts of that transport alone, plus ${Math.round(ss.bogusShare * 100)}% of requests on ${ss.bogusKeys} well-formed unknown keys (401). wrk counts its 200s per keyId from the body (per thread, added up in done()). The metering process records each counted event's lag (event time → its batch committed, which is when usage reads show it: they add the SQS ledger's committed, unflushed journals); "during" keeps the events committed before wrk ended. Backlog: accepted − counted the moment the load ended; drain: from then until counted == accepted. Exact: every key and every account of the phase against key-api's 200s.`,
    '',
    table(
      ['', ...TRANSPORTS.map((t) => TARGET_LABELS[t])],
      [
        ['requests / s (all answers)', ...TRANSPORTS.map((t) => int(r.sustained[t].reqPerSec))],
        ['accepted (200) / s', ...TRANSPORTS.map((t) => int(r.sustained[t].acceptedPerSec))],
        [
          'statuses',
          ...TRANSPORTS.map((t) =>
            Object.entries(r.sustained[t].wrk.statuses)
              .map(([k, v]) => `${k}: ${int(v)}`)
              .join(', '),
          ),
        ],
        [
          'wrk latency p50 / p99 ms',
          ...TRANSPORTS.map(
            (t) => `${ms(r.sustained[t].wrk.latencyMs.p50)} / ${ms(r.sustained[t].wrk.latencyMs.p99)}`,
          ),
        ],
        [
          'usage lag during the load, p50 / p95 / max ms',
          ...TRANSPORTS.map((t) => {
            const l = r.sustained[t].lagDuringMs;
            return `${ms(l.p50, 0)} / ${ms(l.p95, 0)} / ${ms(l.max, 0)} (${int(l.count)} events)`;
          }),
        ],
        [
          'usage lag after the load (the backlog), p50 / p95 ms',
          ...TRANSPORTS.map((t) => {
            const l = r.sustained[t].lagAfterMs;
            return `${ms(l.p50, 0)} / ${ms(l.p95, 0)} (${int(l.count)} events)`;
          }),
        ],
        [
          'accepted / counted at the end of the load',
          ...TRANSPORTS.map(
            (t) => `${int(r.sustained[t].acceptedAtEnd)} / ${int(r.sustained[t].countedAtEnd)}`,
          ),
        ],
        ['backlog at the end of the load', ...TRANSPORTS.map((t) => int(r.sustained[t].backlogAtEnd))],
        ['time to drain after the load, ms', ...TRANSPORTS.map((t) => ms(r.sustained[t].drainMs, 0))],
        [
          'metering batches (avg size), duplicates dropped',
          ...TRANSPORTS.map(
            (t) =>
              `${int(r.sustained[t].consumer.invocations)} (${ms(r.sustained[t].consumer.avgBatch, 1)}), ${int(r.sustained[t].consumer.duplicates)}`,
          ),
        ],
        [
          "wrk's 200s per key within key-api's (gap)",
          ...TRANSPORTS.map(
            (t) => `${r.sustained[t].client.agrees ? 'yes' : 'NO'} (${int(r.sustained[t].client.gap)})`,
          ),
        ],
        [
          'exact: keys wrong, accounts wrong',
          ...TRANSPORTS.map((t) => {
            const e = r.sustained[t].exact;
            return `${e.ok ? 'yes' : 'NO'}: ${e.keysWrong} of ${e.keys}, ${e.accountsWrong} of ${e.accounts}`;
          }),
        ],
      ],
      ['---', '---:', '---:'],
    ),
  );
}

/** §6: events straight to each transport at steady rates; none in older results. */
export function pacedSection(r: BenchResults): string | undefined {
  if (!r.paced) return undefined;
  const p = r.settings.paced;
  return lines(
    '## 6. Write units per event at steady rates, per transport',
    '',
    `Events (\`newUsageEvent\`, partition key keyId) published straight to the benchmark's queue (SendMessageBatch) or stream (PutRecords) at a paced rate, keys Zipf(${p.zipfS}) over ${p.keys} keys in ${p.accounts} accounts of that run alone, consumed by the metering process with the stack's event source settings (contracts/resources.ts). Events carry one producer's numbering (one gate container), as a gate's do. Write units as AWS bills them (2 per transactional item; a refused conditional write still costs its unit, which DynamoDB Local does not report), counted at the consumer's DynamoDB client; exact per key and per account. SQS runs use the ledger's default flush profile (${DEFAULT_LEDGER_FLUSH}) unless labelled with another, and the queue's batching window of that profile (contracts/resources.ts: economy's is 5 s); economy's tail waits for the backstop, which the benchmark runs every 20 s (AWS: every minute). Lag: event time → visible in usage reads (its batch committed); counters lag: → in the counter items themselves (on the SQS ledger, its journal flushed).`,
    '',
    table(
      [
        'transport',
        'rate / s (achieved)',
        'events',
        'write units / event',
        'write requests / event',
        'avg batch',
        'consumer SQS requests / event',
        'lag p50 / p95 ms',
        'counters lag p95 ms',
        'drain ms',
        'exact',
      ],
      TRANSPORTS.flatMap((t) =>
        r.paced[t].map((run) => [
          run.ledgerFlush === undefined ? TARGET_LABELS[t] : `${TARGET_LABELS[t]}, ledger ${run.ledgerFlush}`,
          `${int(run.rate)} (${int(run.achievedPerSec)})`,
          int(run.events),
          run.perEvent.writeUnits.toFixed(3),
          run.perEvent.writeRequests.toFixed(3),
          ms(run.metering.avgBatch, 1),
          t === 'sqs' ? run.perEvent.consumerTransportRequests.toFixed(4) : '—',
          `${ms(run.metering.lagMs.p50, 0)} / ${ms(run.metering.lagMs.p95, 0)}`,
          ms(run.metering.counterLagMs?.p95, 0),
          ms(run.drainMs, 0),
          run.exact.ok ? 'yes' : `NO (${run.exact.mismatches.slice(0, 2).join('; ')})`,
        ]),
      ),
      ['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---'],
    ),
  );
}

/** §7: bare PutRecord against key-api on Kinesis; none in older results. */
export function publishCheckSection(r: BenchResults): string | undefined {
  if (!r.publishCheck) return undefined;
  const pc = r.publishCheck;
  return lines(
    '## 7. Kinesis publish check',
    '',
    `A bare \`PutRecord\` loop (key-api's Kinesis client settings, ${pc.connections} in flight, ${pc.durationSec} s, to a stream no one reads) against key-api over HTTP on Kinesis (the sustained phase, same number of connections): how much of the Kinesis key API's ceiling is the local Kinesis emulator's.`,
    '',
    table(
      ['', 'req/s', 'p50 ms'],
      [
        ['bare PutRecord', int(pc.bare.reqPerSec), ms(pc.bare.latencyMs.p50)],
        ['key-api over HTTP (Kinesis), accepted', int(pc.keyApi.acceptedPerSec), ms(pc.keyApi.p50Ms)],
        ['bare ÷ key-api', ratio(pc.ratio), ''],
      ],
    ),
    '',
    `Bare loop errors: ${int(pc.bare.errors)} of ${int(pc.bare.requests)}.`,
  );
}
