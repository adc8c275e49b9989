/** Polls until the check returns a truthy value, or fails at the deadline with what was last seen. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
  throw new Error(
    `${options.what ?? 'condition'} not reached within ${options.timeoutMs ?? 5000} ms (last: ${String(last)})`,
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
