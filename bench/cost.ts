import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ASSUMPTIONS,
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
} from './cost-model';
import type { BenchResults, Target } from './lib/types';

/**
 * `npm run cost -- --rps 10,100,1000`: monthly AWS cost per component for the baseline and Tollgate
 * on each transport, from the counts `npm run bench` measured (bench/results.json) and the prices
 * in bench/prices.ts.
 */
const { values } = parseArgs({
  options: {
    rps: { type: 'string', default: '10,100,1000' },
    results: { type: 'string', default: 'bench/results.json' },
    'requests-per-connection': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run cost -- [--rps 10,100,1000] [--results bench/results.json] [--requests-per-connection 100]\n',
  );
  process.exit(0);
}

const rates = (values.rps ?? '')
  .split(',')
  .map((v) => Number(v.trim()))
  .filter((v) => Number.isFinite(v) && v > 0);
if (rates.length === 0) {
  process.stderr.write('--rps needs one or more positive numbers, e.g. --rps 10,100,1000\n');
  process.exit(2);
}
const assumptions = {
  ...ASSUMPTIONS,
  ...(values['requests-per-connection']
    ? { requestsPerConnection: Number(values['requests-per-connection']) }
    : {}),
};

const path = resolve(values.results ?? 'bench/results.json');
let results: BenchResults;
try {
  results = JSON.parse(await readFile(path, 'utf8')) as BenchResults;
} catch (error) {
  process.stderr.write(`cannot read ${path} (${(error as Error).message}): run \`npm run bench\` first\n`);
  process.exit(1);
}

const inputs = {
  baseline: measuredInputs(results, 'baseline'),
  sqs: measuredInputs(results, 'sqs'),
  kinesis: measuredInputs(results, 'kinesis'),
} satisfies Record<Target, unknown>;
const cross = crossovers((rps) => inputsAt(results, rps), assumptions);

const out = [
  `Monthly AWS cost, from ${path}`,
  `(measured ${results.finishedAt}, commit ${results.machine.commit.slice(0, 12)}${results.machine.dirty ? ' + local changes' : ''}, profile ${results.settings.profile})`,
  '',
  inputsMarkdown(inputs),
  '',
  ...(results.paced
    ? [
        'Metering at a steady rate (measured; the costs at each rate use these, interpolated between rates):',
        '',
        meteringPointsMarkdown(results),
        '',
      ]
    : []),
  ...rates.flatMap((rps) => [
    costTableMarkdown(costAt(inputsAt(results, rps), rps, undefined, assumptions)),
    '',
  ]),
  ...(results.paced
    ? [
        "Metering overhead per million requests (DynamoDB writes + transport requests + metering Lambda + its logs), beside the article's:",
        '',
        overheadMarkdown(rates.map((rps) => meteringOverhead(results, rps, undefined, assumptions))),
        '',
      ]
    : ['(these results have no paced runs: run `npm run bench` again for the metering overhead)', '']),
  `Kinesis costs less than SQS from:          ${rate(cross.kinesisOverSqs)}`,
  `ALB costs less than API Gateway REST from: ${rate(cross.albOverRestApi)} (the baseline; the article says about 2)`,
  `ALB costs less than API Gateway HTTP from: ${rate(cross.albOverHttpApi)}`,
  '',
  'Assumptions:',
  assumptionsMarkdown(assumptions),
  '',
];
process.stdout.write(out.join('\n'));
