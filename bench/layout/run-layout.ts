import { loadavg } from 'node:os';
import { machineInfo } from '../lib/machine';
import { ProcessTree } from '../lib/process-tree';
import { installSdkCounter } from '../lib/sdk-counter';
import { CHILD_ENV, SCRIPTS } from '../lib/set-up';
import { type MachineInfo, type StackInfo, TRANSPORTS, type Transport } from '../lib/types';
import { layoutContext } from './layout-context';
import { type LayoutSettings, RUN_ORDER } from './profiles';
import { type ReadUnits, readUnits } from './read-units';
import { type LayoutRun, layoutRun } from './write-run';

/** One transport's two layouts side by side, and the ratios hours / previous. */
export interface LayoutComparison {
  readonly hours: LayoutRun;
  readonly previous: LayoutRun;
  readonly ratio: { readonly writeUnits: number; readonly writeRequests: number };
}

export interface LayoutResults {
  readonly version: 1;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationSec: number;
  readonly machine: MachineInfo;
  readonly settings: LayoutSettings;
  /** In the order they ran (profiles.ts RUN_ORDER). */
  readonly runs: LayoutRun[];
  readonly byTransport: Record<Transport, LayoutComparison>;
  readonly reads: ReadUnits;
  /** Every run exact, every item laid out as its layout writes it, every answer's total as seeded. */
  readonly exact: boolean;
  readonly loadAverageAtEnd: number[];
}

const round = (value: number, digits = 4) => Math.round(value * 10 ** digits) / 10 ** digits;

function compare(runs: readonly LayoutRun[], transport: Transport): LayoutComparison {
  const find = (layout: LayoutRun['layout']) => {
    const run = runs.find((r) => r.transport === transport && r.layout === layout);
    if (!run) throw new Error(`no ${transport} run with the ${layout} layout`);
    return run;
  };
  const hours = find('hours');
  const previous = find('previous');
  const ratio = (of: (run: LayoutRun) => number) =>
    of(previous) > 0 ? round(of(hours) / of(previous)) : Number.NaN;
  return {
    hours,
    previous,
    ratio: {
      writeUnits: ratio((r) => r.perEvent.writeUnits),
      writeRequests: ratio((r) => r.perEvent.writeRequests),
    },
  };
}

export interface RunLayoutOptions {
  readonly settings: LayoutSettings;
  readonly log?: (line: string) => void;
}

/**
 * `npm run bench:layout`: a local stack of its own (a child process), then each (transport,
 * layout) run in RUN_ORDER with a metering process of its own, then the read-units account; all
 * in one process tree, stopped together however the run ends.
 */
export async function runLayoutBench(options: RunLayoutOptions): Promise<LayoutResults> {
  const { settings } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  installSdkCounter();
  const started = Date.now();
  const machine = machineInfo();
  const processes = new ProcessTree();
  try {
    log('stack: starting the local stack (temp data dir, free ports)');
    const stack = (await processes.start<StackInfo>(SCRIPTS.stack, { env: CHILD_ENV })).ready;
    const ctx = await layoutContext(stack, settings, log, processes);
    const runs: LayoutRun[] = [];
    for (const { transport, layout } of RUN_ORDER) {
      log(
        `${transport}, ${layout} layout: ${settings.rate} events/s for ${settings.durationSec} s over ${settings.keys} keys (Zipf ${settings.zipfS})`,
      );
      const run = await layoutRun(ctx, transport, layout);
      runs.push(run);
      log(
        `  ${run.events} events at ${run.achievedPerSec.toFixed(0)}/s: ${run.perEvent.writeUnits.toFixed(4)} write units and ${run.perEvent.writeRequests.toFixed(4)} write requests per event, batches of ${run.metering.avgBatch.toFixed(1)}; counters median ${run.items.medianBytes} B, max ${run.items.maxBytes} B; exact ${run.exact.ok ? 'yes' : `NO (${run.exact.mismatches.join('; ')})`}`,
      );
    }
    const reads = await readUnits(ctx);
    const byTransport = Object.fromEntries(TRANSPORTS.map((t) => [t, compare(runs, t)])) as Record<
      Transport,
      LayoutComparison
    >;
    const finished = Date.now();
    return {
      version: 1,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationSec: Math.round((finished - started) / 100) / 10,
      machine,
      settings,
      runs,
      byTransport,
      reads,
      exact:
        runs.every((r) => r.exact.ok && r.exact.counted === r.events && r.items.hoursAsLaidOut) &&
        reads.items.hoursAsLaidOut &&
        reads.answers.every((a) => a.total === a.expectedTotal && a.keys === reads.keys),
      loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
    };
  } finally {
    await processes.stopAll();
  }
}
