import type { ProcessTree } from '../lib/process-tree';
import { CHILD_ENV, SCRIPTS } from '../lib/set-up';
import type { BenchSettings, CpuResults } from '../lib/types';

/** §2: CPU per check, first and alone: nothing else of the benchmark runs yet. */
export async function cpu(
  settings: BenchSettings,
  log: (line: string) => void,
  processes: ProcessTree,
): Promise<CpuResults> {
  log(`cpu: ${settings.cpuRounds} rounds of ${settings.cpuRoundMs} ms per row`);
  const child = await processes.start<unknown>(SCRIPTS.cpu, {
    args: [String(settings.cpuRoundMs), String(settings.cpuRounds), String(settings.cpuMinIterations)],
    env: CHILD_ENV,
  });
  const results = await child.call<CpuResults>('run');
  await processes.stop(child);
  return results;
}
