/**
 * Monthly AWS cost per component, from the operation counts the benchmark measured per request
 * (bench/results.json) and the price table (bench/prices.ts). Nothing here is a guess about
 * Tollgate's behaviour: per-request counts, sizes and durations all come from the run. What is
 * assumed is said in ASSUMPTIONS and printed with every table.
 *
 *   cost-model/deployment.ts  how each design is deployed, and the assumptions
 *   cost-model/inputs.ts      what the model takes from a run, per design and rate
 *   cost-model/monthly.ts     the monthly cost per component at a rate, and the crossovers
 *   cost-model/overhead.ts    what counting costs per million requests
 *   cost-model/markdown.ts    the tables BENCHMARKS.md and `npm run cost` print
 */
export * from './cost-model/deployment';
export * from './cost-model/inputs';
export * from './cost-model/markdown';
export * from './cost-model/monthly';
export * from './cost-model/overhead';
