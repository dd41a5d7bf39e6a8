import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import type { MachineInfo } from './types';

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** The machine a run was made on, and the commit of the code it ran. */
export function machineInfo(): MachineInfo {
  const cpuList = cpus();
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return {
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    commit: git(['rev-parse', 'HEAD']) ?? 'unknown',
    // Uncommitted changes to tracked files at the time of the run (the commit alone would not say).
    dirty: status === undefined ? false : status.length > 0,
  };
}
