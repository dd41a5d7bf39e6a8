import type { ALBResult } from 'aws-lambda';
import { median } from '../stats';

/*
 * The timing of bench/proc/cpu.ts's rows: wall time (hrtime) and this process's CPU time per
 * operation, the median of several rounds after an unmeasured one.
 */

/** Where the sync rows' results go, so the JIT cannot drop their work (see keepResults). */
let sink = 0;

/** How each row is timed: an unmeasured round, then `rounds` rounds of about `roundMs` each. */
export interface TimingSettings {
  readonly roundMs: number;
  readonly rounds: number;
  readonly minIterations: number;
}

/**
 * What a row's operation is: a plain function, an async one, or one answering HTTP (an ALB result,
 * or a fetch Response) whose every answer's status is counted: the same comparison in each such
 * row, so ratios between them hold.
 */
export type Operation =
  | { readonly kind: 'sync'; readonly run: () => unknown }
  | { readonly kind: 'async'; readonly run: () => Promise<unknown> }
  | { readonly kind: 'alb'; readonly run: () => Promise<ALBResult> }
  | { readonly kind: 'fetch'; readonly run: () => Response | Promise<Response> };

/** Wall time (hrtime) and this process's CPU time (user + system) per operation, in ns. */
async function timeRound(op: Operation, iterations: number, statuses: Record<string, number>) {
  let ok = 0;
  const other = (status: number) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
  };
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  if (op.kind === 'sync') for (let i = 0; i < iterations; i++) sink += op.run() ? 1 : 0;
  else if (op.kind === 'async') for (let i = 0; i < iterations; i++) await op.run();
  else if (op.kind === 'alb') {
    for (let i = 0; i < iterations; i++) {
      const status = (await op.run()).statusCode;
      if (status === 200) ok++;
      else other(status);
    }
  } else {
    for (let i = 0; i < iterations; i++) {
      const status = (await op.run()).status;
      if (status === 200) ok++;
      else other(status);
    }
  }
  const wall = Number(process.hrtime.bigint() - started) / iterations;
  const used = process.cpuUsage(cpu);
  if (ok > 0) statuses[200] = (statuses[200] ?? 0) + ok;
  return { wall, cpu: ((used.user + used.system) * 1000) / iterations };
}

export async function time(op: Operation, settings: TimingSettings) {
  const statuses: Record<string, number> = {};
  const estimate = await timeRound(op, settings.minIterations, statuses);
  const iterations = Math.max(settings.minIterations, Math.ceil((settings.roundMs * 1e6) / estimate.wall));
  const rounds: Array<{ wall: number; cpu: number }> = [];
  for (let round = 0; round < settings.rounds; round++)
    rounds.push(await timeRound(op, iterations, statuses));
  return {
    iterations,
    nsPerOp: median(rounds.map((r) => r.wall)),
    minNsPerOp: Math.min(...rounds.map((r) => r.wall)),
    cpuNsPerOp: median(rounds.map((r) => r.cpu)),
    // Every answer, the unmeasured round's included.
    ...(op.kind === 'alb' || op.kind === 'fetch' ? { statuses } : {}),
  };
}

/** Keeps the sync rows' results observable, so the JIT cannot drop their work. */
export function keepResults(): void {
  if (sink < 0) process.stdout.write('');
}
