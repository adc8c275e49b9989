import type { ReadinessProbe } from '../../mesh/api/services.js';

/** What a task's probe has shown so far. */
export interface Readiness {
  ready: boolean;
  /** Passes and failures in a row, the latest run included. */
  successes: number;
  failures: number;
  everReady: boolean;
  /** Failed failureThreshold times in a row past its start period, never having been ready. */
  neverReady: boolean;
  /** The latest outcome, in words. */
  detail: string;
}

export const NOT_YET_PROBED: Readiness = {
  ready: false,
  successes: 0,
  failures: 0,
  everReady: false,
  neverReady: false,
  detail: 'not probed yet',
};

/**
 * One probe outcome applied, as a pure step: successThreshold passes in a row make a task ready,
 * failureThreshold failures in a row make it not ready. Failures within the start period do not
 * count, so a slow starter is not given up on before it could answer.
 */
export function afterProbe(
  before: Readiness,
  probe: ReadinessProbe,
  outcome: { ok: boolean; detail: string },
  sinceStartMs: number,
): Readiness {
  if (outcome.ok) {
    const successes = before.successes + 1;
    const ready = before.ready || successes >= probe.successThreshold;
    return {
      ready,
      successes,
      failures: 0,
      everReady: before.everReady || ready,
      neverReady: before.neverReady && !ready,
      detail: outcome.detail,
    };
  }
  const failures = sinceStartMs < probe.startPeriodMs ? 0 : before.failures + 1;
  const failing = failures >= probe.failureThreshold;
  return {
    ready: before.ready && !failing,
    successes: 0,
    failures,
    everReady: before.everReady,
    neverReady: before.neverReady || (failing && !before.everReady),
    detail: outcome.detail,
  };
}
