import { LocalStackError } from './errors';

/**
 * Retries `probe` until it returns a value; throws after `timeoutMs`. A LocalStackError from the
 * probe means waiting longer cannot help (the engine died) and ends the wait at once.
 */
export async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof LocalStackError) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new LocalStackError(`timed out after ${timeoutMs / 1000} s waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits until `probe` resolves (an engine answers a request) instead of throwing. */
export async function waitForAnswer(what: string, probe: () => Promise<unknown>): Promise<void> {
  await poll(`${what} to answer`, async () => {
    await probe();
    return true;
  });
}
