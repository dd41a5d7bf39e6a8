import { type ChildProcess, fork } from 'node:child_process';

/**
 * The benchmark's process tree: the orchestrator forks each part under test (the local stack, each
 * key-api, the baseline, the metering consumer) into its own Node process, talks to it over the IPC
 * channel with small request/answer messages, and stops it by its own pid.
 */

interface Request {
  readonly id: number;
  readonly cmd: string;
  readonly args?: unknown;
}
type Answer = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
type Ready = { ready: true; value: unknown } | { ready: false; error: string };

export interface Child<R> {
  readonly pid: number;
  /** What the child sent when it was ready. */
  readonly ready: R;
  call<T = unknown>(cmd: string, args?: unknown): Promise<T>;
  /** Asks the child to clean up and exit; kills it (by pid) if it does not within `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface StartChildOptions {
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How long the child may take to say it is ready. @default 180_000 */
  readonly readyTimeoutMs?: number;
}

/** Forks a TypeScript module (run with tsx) and waits for its `ready` message. */
export async function startChild<R>(script: string, options: StartChildOptions = {}): Promise<Child<R>> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...process.env, ...options.env })) {
    if (value !== undefined) env[name] = value;
  }
  const child: ChildProcess = fork(script, [...(options.args ?? [])], {
    execArgv: ['--import', 'tsx'],
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pid = child.pid ?? 0;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      for (const { reject } of pending.values()) {
        reject(new Error(`${script} exited (${signal ?? `code ${code}`}) with a request pending`));
      }
      pending.clear();
      resolve();
    });
  });

  const ready = await new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${script} was not ready within ${options.readyTimeoutMs ?? 180_000} ms`));
      child.kill('SIGKILL');
    }, options.readyTimeoutMs ?? 180_000);
    const onMessage = (message: Ready | Answer) => {
      if (!('ready' in message)) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      if (message.ready) resolve(message.value as R);
      else reject(new Error(`${script} failed to start: ${message.error}`));
    };
    child.on('message', onMessage);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${signal ?? `code ${code}`}) before it was ready`));
    });
  });

  child.on('message', (message: Answer | Ready) => {
    if (!('id' in message)) return;
    const waiting = pending.get(message.id);
    if (!waiting) return;
    pending.delete(message.id);
    if (message.ok) waiting.resolve(message.value);
    else waiting.reject(new Error(message.error));
  });

  return {
    pid,
    ready,
    call<T>(cmd: string, args?: unknown): Promise<T> {
      if (exited) return Promise.reject(new Error(`${script} has exited`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, cmd, args } satisfies Request);
      });
    },
    async stop(timeoutMs = 30_000) {
      if (exited) return;
      const timer = setTimeout(() => {
        if (!exited) process.kill(pid, 'SIGKILL');
      }, timeoutMs);
      try {
        if (child.connected) child.send({ id: 0, cmd: 'stop' } satisfies Request);
      } catch {
        // The channel closed meanwhile: the exit below still settles.
      }
      await exit;
      clearTimeout(timer);
    },
  };
}

export type Handlers = Record<string, (args: never) => unknown>;

/**
 * The child's side: answers the parent's requests with `handlers`, and on `stop` (or when the
 * parent goes away) runs `cleanUp` and exits.
 */
export function serveParent(
  start: () => Promise<{ ready: unknown; handlers: Handlers; cleanUp: () => Promise<void> }>,
): void {
  const send = (message: Ready | Answer) => {
    if (process.connected) process.send?.(message);
  };
  let cleanUp: (() => Promise<void>) | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        await cleanUp?.();
      } catch (error) {
        process.stderr.write(`cleanup failed: ${(error as Error).stack ?? error}\n`);
      }
      process.exit(0);
    })();
    return stopping;
  };
  process.on('disconnect', () => void stop());
  start().then(
    ({ ready, handlers, cleanUp: clean }) => {
      cleanUp = clean;
      process.on('message', async (message: Request) => {
        if (message.cmd === 'stop') {
          await stop();
          return;
        }
        const handler = handlers[message.cmd];
        try {
          if (!handler) throw new Error(`unknown command ${message.cmd}`);
          const value = await handler(message.args as never);
          send({ id: message.id, ok: true, value });
        } catch (error) {
          send({ id: message.id, ok: false, error: (error as Error).stack ?? String(error) });
        }
      });
      send({ ready: true, value: ready });
    },
    (error: unknown) => {
      send({ ready: false, error: (error as Error).stack ?? String(error) });
      setTimeout(() => process.exit(1), 100);
    },
  );
}
