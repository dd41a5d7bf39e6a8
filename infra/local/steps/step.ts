import type { UsageRedelivery } from '../../../contracts/redelivery';
import type { MetricStore } from '../ops/metric-store';
import type { LocalPorts } from '../ports';

/**
 * What every start step of the local stack reads: which stack it is part of and how it speaks to
 * the person running it. Each step returns what later steps need, plus its `stop`.
 */
export interface StackContext {
  /** Part of every resource name. */
  readonly stage: string;
  /** Only warnings and errors: for tests. */
  readonly quiet: boolean;
  readonly ports: LocalPorts;
  /** Absolute; where everything persistent lives. */
  readonly dataDir: string;
  /** Redelivery and retention as the CDK stack derives them from the same late window. */
  readonly redelivery: UsageRedelivery;
  /**
   * What the functions record (their Powertools metrics) and the stand-ins measure, while the
   * stack runs: the ops page's figures (infra/local/ops).
   */
  readonly metrics: MetricStore;
  /** A line for the person running the stack; nothing when quiet. */
  notice(line: string): void;
}

export interface Stoppable {
  stop(): Promise<void> | void;
}

/**
 * What has been started so far, stopped in reverse order: everything that started after a thing
 * may still use it (the pollers use DynamoDB, the handlers the engines). A stop that fails is
 * reported and the others still run.
 */
export class StopList {
  readonly #started: Array<{ what: string; stop: () => Promise<void> | void }> = [];

  /** Registers the step's stop under `what` and hands the step back. */
  add<T extends Stoppable>(what: string, started: T): T {
    this.#started.push({ what, stop: () => started.stop() });
    return started;
  }

  async stopAll(): Promise<void> {
    for (const { what, stop } of this.#started.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        process.stderr.write(`stopping ${what} failed: ${(error as Error).message}\n`);
      }
    }
  }
}

/**
 * A step made of parts that each register their stop in `parts`: if a part fails, those started
 * before it are stopped before the error goes on; once all are up, the step's `stop` stops them.
 */
export async function inParts<T extends object>(
  build: (parts: StopList) => Promise<T>,
): Promise<T & Stoppable> {
  const parts = new StopList();
  try {
    const built = await build(parts);
    return { ...built, stop: () => parts.stopAll() };
  } catch (error) {
    await parts.stopAll();
    throw error;
  }
}

/** An engine (emulator) of the stack: listening once started, answering once `ready` resolves. */
export interface Engine extends Stoppable {
  readonly endpoint: string;
  /** Resolves once the engine answers requests; the stack waits for all engines at once. */
  ready(): Promise<void>;
}
