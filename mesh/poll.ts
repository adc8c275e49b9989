import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Runs `check` until it returns something truthy, waiting `intervalMs` between tries, and gives
 * up with undefined once `timeoutMs` has passed: the caller says what running out of time means
 * (a failed wait, a progress report, a harder signal). A try under way is never cut short.
 */
export async function pollUntil<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs: number; intervalMs: number },
): Promise<NonNullable<T> | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() >= deadline) return undefined;
    await sleep(options.intervalMs);
  }
}
