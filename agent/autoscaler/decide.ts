/**
 * The autoscaler's decision as a pure step on the leader, Kubernetes' HorizontalPodAutoscaler's
 * algorithm: for each metric, desired = ceil(ready × observed / target); the largest wins; within
 * the tolerance nothing changes; a scale-down waits until every recommendation of its
 * stabilization window allows it; each direction adds or removes at most so many replicas per
 * period; the result stays within min and max. What it must remember across leaders (the window's
 * recommendations, the recent changes) goes in and comes out as history, kept in the replicated
 * state: samples are not cluster state, decisions are.
 */

import {
  type AutoscaleHistory,
  type AutoscalePolicy,
  type AutoscaleTargets,
  withinBounds,
} from '../../mesh/api/autoscale.js';

/** Replicas HPA may add per period at least, whatever the percentage allows. */
const UP_STEP_FLOOR = 4;

/** What the service looks like now, as the leader heard it from the nodes. */
export interface Observation {
  now: number;
  /** The replica count the service asks for now. */
  replicas: number;
  /** Its replicas that are running and ready: only they count. */
  ready: number;
  /**
   * What each ready replica that has metrics uses, in percent of its reservation (or limit); a
   * ready replica without metrics yet is absent, and counts as neither hot nor cold.
   */
  usage: Array<{ cpu?: number; memory?: number }>;
  /** Requests (or connections) per second to the service, summed over every node; unset: none heard yet. */
  rps?: number;
}

export interface Decision {
  replicas: number;
  /** Why, for `mesh inspect` and the events: `scaled 3→6: cpu 84% > target 60%`. */
  reason: string;
  history: AutoscaleHistory;
}

/** One metric's recommendation, and what it saw. */
interface Proposal {
  replicas: number;
  why: string;
}

const percent = (value: number) => `${Math.round(value)}%`;

/** The metric's recommendation, or undefined when it has nothing to go on. */
function propose(
  metric: keyof AutoscaleTargets,
  target: number,
  observation: Observation,
  tolerance: number,
): Proposal | undefined {
  const { ready, usage } = observation;
  if (ready === 0) return undefined;
  let observed: number;
  let shown: string;
  if (metric === 'rps') {
    if (observation.rps === undefined) return undefined;
    observed = observation.rps / ready;
    shown = `${metric} ${observed.toFixed(1)}/replica`;
  } else {
    const values = usage.flatMap((u) => (u[metric] === undefined ? [] : [u[metric] as number]));
    if (values.length === 0) return undefined;
    // A ready replica without metrics yet is taken to be on target, as HPA does not count it.
    const missing = Math.max(0, ready - values.length);
    observed = (values.reduce((sum, v) => sum + v, 0) + missing * target) / ready;
    shown = `${metric} ${percent(observed)}`;
  }
  const ratio = observed / target;
  const targetShown = metric === 'rps' ? String(target) : percent(target);
  if (Math.abs(ratio - 1) <= tolerance)
    return {
      replicas: observation.replicas,
      why: `${shown} within tolerance of target ${targetShown}`,
    };
  const comparison = ratio > 1 ? '>' : '<';
  return {
    replicas: Math.ceil(ready * ratio),
    why: `${shown} ${comparison} target ${targetShown}`,
  };
}

/** Replicas moved in a direction within the period before now. */
function movedWithin(
  history: AutoscaleHistory,
  now: number,
  periodMs: number,
  up: boolean,
): number {
  return history.changes
    .filter((c) => c.at > now - periodMs && c.to > c.from === up)
    .reduce((sum, c) => sum + Math.abs(c.to - c.from), 0);
}

/** The replica count the service should have now, why, and the history to keep. */
export function decide(
  policy: AutoscalePolicy,
  observation: Observation,
  history: AutoscaleHistory,
): Decision {
  const { now, replicas: current } = observation;
  const { min, max, scaleUp, scaleDown } = policy;
  const keepSince = now - Math.max(scaleUp.periodMs, scaleDown.periodMs);
  const recentChanges = history.changes.filter((c) => c.at > keepSince);
  const finish = (
    replicas: number,
    reason: string,
    recommendations: AutoscaleHistory['recommendations'],
  ) => ({
    replicas,
    reason,
    history: {
      recommendations,
      changes:
        replicas === current
          ? recentChanges
          : [...recentChanges, { at: now, from: current, to: replicas }],
    },
  });

  // Out of bounds (the policy changed): straight to the bound, whatever the limits.
  if (current < min || current > max) {
    const bounded = withinBounds(policy, current);
    return finish(bounded, `scaled ${current}→${bounded}: outside min ${min}, max ${max}`, []);
  }

  const proposals = (Object.keys(policy.targets) as Array<keyof AutoscaleTargets>).flatMap(
    (metric) => {
      const target = policy.targets[metric];
      const proposal =
        target === undefined ? undefined : propose(metric, target, observation, policy.tolerance);
      return proposal ? [proposal] : [];
    },
  );
  const windowStart = now - scaleDown.stabilizationMs;
  const kept = history.recommendations.filter((r) => r.at > windowStart);
  if (proposals.length === 0) return finish(current, `held at ${current}: no metrics yet`, kept);
  const largest = proposals.reduce((a, b) => (b.replicas > a.replicas ? b : a));
  const recommended = withinBounds(policy, largest.replicas);
  // Only the window's highest counts: an older one no higher than this one never will again.
  const recommendations = [
    ...kept.filter((r) => r.replicas > recommended),
    { at: now, replicas: recommended },
  ];
  const why = proposals.map((p) => p.why).join(', ');

  if (recommended === current)
    return finish(current, `held at ${current}: ${why}`, recommendations);
  const held = (what: string) =>
    finish(current, `held at ${current}: ${what} (${why})`, recommendations);
  const up = recommended > current;
  let goal = recommended;
  if (!up) {
    // Replicas still starting carry no load yet: fewer would look enough until they do.
    if (observation.ready < current)
      return held(`down to ${recommended} waits for every replica to be ready`);
    // The highest recommendation of the window: a dip shorter than it changes nothing.
    goal = Math.max(...recommendations.map((r) => r.replicas));
    if (goal >= current) return held(`down to ${recommended} waits for the stabilization window`);
  }
  const limit = up ? scaleUp : scaleDown;
  const maxStep = up ? (scaleUp.maxStep ?? Math.max(UP_STEP_FLOOR, current)) : scaleDown.maxStep;
  const room =
    maxStep === undefined
      ? Number.POSITIVE_INFINITY
      : Math.max(0, maxStep - movedWithin(history, now, limit.periodMs, up));
  const next = up ? Math.min(goal, current + room) : Math.max(goal, current - room);
  const direction = up ? 'up' : 'down';
  if (next === current)
    return held(`${direction} to ${goal} waits for the scale-${direction} period`);
  const limited = next !== goal ? ` (limited to ${maxStep} per ${limit.periodMs / 1000}s)` : '';
  return finish(next, `scaled ${current}→${next}${limited}: ${why}`, recommendations);
}
