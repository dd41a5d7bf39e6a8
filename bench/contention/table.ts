import type { ContentionResults, ContentionRow } from './sweep';

const pct = (x: number) => `${Math.round(x * 100)} %`;
const num = (x: number, digits = 0) =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function line(r: ContentionRow): string {
  const cells = [
    num(r.rate),
    String(r.concurrency),
    num(r.producers),
    r.sweep === 'rate × c' ? '' : `${r.profile}, W ${r.windowMs / 1_000} s, ${r.readMs}/${r.writeMs} ms`,
    num(r.batchEvents),
    num(r.commitsPerS, 1),
    num(r.headWritesPerS, 1),
    pct(r.lostShare),
    `${num(r.meanAttempts, 2)} / ${r.p99Attempts}`,
    num(r.gaveUp),
    num(r.headBytes / 1_024, 1),
    `${num(r.partitionWcuPerS)} (${pct(r.wcuShare)})`,
    `${num(r.partitionRcuPerS)} (${pct(r.rcuShare)})`,
    r.keepsUp ? 'yes' : `no (${num(r.eventsPerS)})`,
    `${r.ledgersRule} / ${r.ledgers}`,
    r.overload.length === 0 ? r.verdict : `${r.verdict}: ${r.overload.join(', ')}`,
  ];
  return `| ${cells.join(' | ')} |`;
}

const HEADER = [
  '| events/s | c | producers | profile | batch | commits/s | head writes/s | lost | attempts mean / p99 | give-ups | head KB | partition WCU/s | partition RCU/s | keeps up | L rule / sim | verdict |',
  '| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |',
];

/** The results as markdown tables: the R × c grid, the side sweeps, and the largest c per head. */
export function contentionTables(results: ContentionResults): string {
  const sweeps = [...new Set(results.rows.map((r) => r.sweep))];
  const tables = sweeps.map((sweep) =>
    [`**${sweep}**`, '', ...HEADER, ...results.rows.filter((r) => r.sweep === sweep).map(line)].join('\n'),
  );
  const largest = [
    '| events/s | largest c on one head |',
    '| ---: | ---: |',
    ...results.maxConcurrencyPerHead.map((m) => `| ${num(m.rate)} | ${m.concurrency ?? 'none'} |`),
  ].join('\n');
  return [...tables, `**MaximumConcurrency one head carries** (balanced, W 1 s)\n\n${largest}`].join('\n\n');
}
