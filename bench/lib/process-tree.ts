import { type Child, type StartChildOptions, startChild } from './ipc';

/**
 * The benchmark's child processes and the clients it holds, stopped together when the run ends
 * (children last started first, then the clean-ups, last registered first), however it ends.
 */
export class ProcessTree {
  readonly #children: Array<Child<unknown>> = [];
  readonly #cleanups: Array<() => Promise<void> | void> = [];

  /** Forks `script` (bench/lib/ipc.ts) and keeps it, so stopAll stops it. */
  async start<R>(script: string, options: StartChildOptions = {}): Promise<Child<R>> {
    const child = await startChild<R>(script, options);
    this.#children.push(child);
    return child;
  }

  /** Stops one child now (the CPU measurement, before the stack starts). */
  async stop(child: Child<unknown>): Promise<void> {
    await child.stop();
    this.#children.splice(this.#children.indexOf(child), 1);
  }

  onStop(cleanup: () => Promise<void> | void): void {
    this.#cleanups.push(cleanup);
  }

  async stopAll(): Promise<void> {
    for (const child of this.#children.splice(0).reverse()) await child.stop().catch(() => {});
    for (const cleanup of this.#cleanups.splice(0).reverse()) await cleanup();
  }
}
