import { setTimeout as delay } from 'node:timers/promises';

/**
 * Polls `probe` until it returns a value that `done` accepts, or fails after the deadline with
 * the last value seen. Tests wait for state with this, never with a fixed sleep.
 */
export async function eventually<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  { timeoutMs = 30_000, intervalMs = 100, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (done(last)) return last;
    } catch (error) {
      lastError = error;
    }
    await delay(intervalMs);
  }
  throw new Error(
    `${what} not reached within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`,
    {
      cause: lastError,
    },
  );
}
