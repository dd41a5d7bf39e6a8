import {
  assumptionsMarkdown,
  costAt,
  costTableMarkdown,
  crossovers,
  inputsAt,
  inputsMarkdown,
  measuredInputs,
  meteringOverhead,
  meteringPointsMarkdown,
  overheadMarkdown,
  rate,
} from '../../cost-model';
import { type BenchResults, TARGET_LABELS, TARGETS, type Target, TRANSPORTS } from '../types';
import { int, lines, table } from './format';
import { COST_RATES } from './headline';

/** §8: the measured figures priced at each rate, and the crossovers. */
export function costSection(r: BenchResults): string {
  const inputs = Object.fromEntries(TARGETS.map((t) => [t, measuredInputs(r, t)])) as Record<
    Target,
    ReturnType<typeof measuredInputs>
  >;
  const cross = crossovers((rps) => inputsAt(r, rps));
  return lines(
    '## 8. Cost model',
    '',
    "`npm run cost -- --rps 10,100,1000` prints these from bench/results.json; the inputs are the measured figures above: the key check's from §1-3, metering's at each rate from §6 (the table below), since they depend on how full the batches are.",
    '',
    inputsMarkdown(inputs),
    '',
    meteringPointsMarkdown(r),
    '',
    ...COST_RATES.flatMap((rps) => [costTableMarkdown(costAt(inputsAt(r, rps), rps)), '']),
    '**Metering overhead per million requests**: what counting the requests costs, apart from checking the keys (the components are listed under Assumptions), at each rate with the metering figures measured at that rate (§6; "≈" marks a rate between measured ones, interpolated).',
    '',
    overheadMarkdown(COST_RATES.map((rps) => meteringOverhead(r, rps))),
    '',
    `- **Kinesis costs less than SQS from ${rate(cross.kinesisOverSqs)}** (one shard's hours against SQS's per-request price).`,
    `- The ALB costs less than API Gateway REST in front of the baseline from ${rate(cross.albOverRestApi)} (the article says about 2), and less than an HTTP API from ${rate(cross.albOverHttpApi)}.`,
    '',
    'Assumptions:',
    '',
    assumptionsMarkdown(),
  );
}

/** Every exactness check of the run, per transport and the baseline. */
export function exactnessSection(r: BenchResults): string {
  return lines(
    '## Exactness checks',
    '',
    `${r.exactChecks.filter((c) => c.ok).length} of ${r.exactChecks.length} passed. Each transport alone, cumulative since the start: the usage metering wrote for that transport's own accounts (UsageReader: keyTotals per key, dailyCounts per account) against the 200s its key API answered; the baseline's Count total against its 200s:`,
    '',
    table(
      [
        'after',
        ...TRANSPORTS.map((t) => `${TARGET_LABELS[t]}: counted / answered (keys, accounts wrong)`),
        'baseline',
        'settled after ms',
        'exact',
      ],
      r.exactChecks.map((c) => [
        c.phase,
        ...TRANSPORTS.map((t) => {
          const e = c.transports?.[t];
          return e
            ? `${int(e.counted)} / ${int(e.answered)} (${e.keysWrong}, ${e.accountsWrong})${e.ok ? '' : ' NO'}`
            : '—';
        }),
        c.baseline ? `${int(c.baseline.counted)} / ${int(c.baseline.answered)}` : '—',
        int(c.settledMs),
        c.ok ? 'yes' : 'NO',
      ]),
      ['---', '---:', '---:', '---:', '---:', '---'],
    ),
    '',
    `Per transport, over every check and phase (sustained and paced included): ${TRANSPORTS.map((t) => `${TARGET_LABELS[t]} ${r.exactByTransport?.[t] ? 'exact' : 'NOT exact'}`).join(', ')}.`,
  );
}
