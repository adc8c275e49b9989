import { pollUntil, type Truthy } from '../../mesh/poll.js';

/** Polls until the check returns a truthy value, or fails at the deadline with what was last seen. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<Truthy<T>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  let last: T | undefined;
  const value = await pollUntil(
    async () => {
      last = await check();
      return last;
    },
    { timeoutMs, intervalMs: options.intervalMs ?? 25 },
  );
  if (value !== undefined) return value;
  throw new Error(
    `${options.what ?? 'condition'} not reached within ${timeoutMs} ms (last: ${String(last)})`,
  );
}

/** The body of the first successful GET of the URL, polling until the server answers. */
export function bodyOnceAnswering(url: string, what: string, timeoutMs = 10_000): Promise<string> {
  return eventually(
    () =>
      fetch(url).then(
        (res) => res.text(),
        () => '', // not listening yet
      ),
    { what, timeoutMs },
  );
}

/**
 * Whether the promise has settled after `waitMs` (0: once the callbacks queued now have run).
 * For a wait that must still be pending: the time given is what it had to end wrongly in.
 */
export async function settledWithin(promise: Promise<unknown>, waitMs = 0): Promise<boolean> {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  await new Promise((resolve) =>
    waitMs > 0 ? setTimeout(resolve, waitMs) : setImmediate(resolve),
  );
  return done;
}
