import type { RestartPolicy } from '../../mesh/api/services.js';

export type AfterExit =
  | { restart: true; delayMs: number; reason: string }
  | { restart: false; state: 'complete' | 'failed'; reason: string };

function duration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}

/**
 * What a task's restart policy says once its process ended: restart it after the delay, or leave
 * it complete or failed. `restarts` are the times of its earlier restarts (ms), oldest first.
 */
export function afterExit(
  policy: RestartPolicy,
  exitCode: number,
  exitReason: string,
  restarts: number[],
  now: number,
): AfterExit {
  const ended = exitCode === 0 ? 'complete' : 'failed';
  if (policy.condition === 'none') return { restart: false, state: ended, reason: exitReason };
  if (policy.condition === 'on-failure' && exitCode === 0)
    return { restart: false, state: 'complete', reason: exitReason };
  const counted =
    policy.windowMs > 0 ? restarts.filter((t) => now - t < policy.windowMs) : restarts;
  if (policy.maxAttempts > 0 && counted.length >= policy.maxAttempts) {
    const within = policy.windowMs > 0 ? ` within ${duration(policy.windowMs)}` : '';
    return {
      restart: false,
      state: 'failed',
      reason: `${exitReason}; gave up after ${counted.length} restarts${within} (restart_policy.max_attempts)`,
    };
  }
  const attempt =
    policy.maxAttempts > 0
      ? `${counted.length + 1}/${policy.maxAttempts}`
      : `${counted.length + 1}`;
  return {
    restart: true,
    delayMs: policy.delayMs,
    reason: `${exitReason}; restart ${attempt} in ${duration(policy.delayMs)}`,
  };
}
