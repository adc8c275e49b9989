import { setTimeout as sleep } from 'node:timers/promises';

/** What a check returns when it holds: its value, less the falsy ones. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Runs `check` until it returns something truthy, waiting `intervalMs` between tries, and gives
 * up with undefined once `timeoutMs` has passed: the caller says what running out of time means
 * (a failed wait, a progress report, a harder signal). A try under way is never cut short.
 */
export async function pollUntil<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs: number; intervalMs: number },
): Promise<Truthy<T> | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() >= deadline) return undefined;
    await sleep(options.intervalMs);
  }
}
