/**
 * Autoscaling's data: the policy a service declares (`x-mesh: {autoscale: …}`), and what the
 * leader keeps of its decisions (autoscaling/<stack>.<name>) so that a new leader neither forgets
 * a stabilization window nor repeats a step. Samples are not kept here: they travel from the nodes
 * to the leader and stay in its memory.
 */

import { amount, type Check, integer, listOf, object, string } from './schema.js';

/** The targets a service scales on: at least one. */
export interface AutoscaleTargets {
  /** CPU, in percent of the replica's reservation (or of its limit without one). */
  cpu?: number;
  /** Memory, in percent of the replica's reservation (or of its limit without one). */
  memory?: number;
  /**
   * Requests per second per ready replica, through the HTTP ingress of every node, plus
   * connections per second through the routing mesh (the only count of a TCP-only service).
   */
  rps?: number;
}

export const AUTOSCALE_METRICS = ['cpu', 'memory', 'rps'] as const;

/** How far one direction may move: at most maxStep replicas per periodMs. */
export interface StepLimit {
  /** Unset: as many as the recommendation asks for (up: at least 4, or double, per period). */
  maxStep?: number;
  periodMs: number;
}

/** `x-mesh: {autoscale: …}` of a replicated service, times in milliseconds. */
export interface AutoscalePolicy {
  min: number;
  max: number;
  targets: AutoscaleTargets;
  /** Observed within target × (1 ± tolerance): no change. */
  tolerance: number;
  scaleUp: StepLimit;
  scaleDown: StepLimit & { stabilizationMs: number };
}

/**
 * HPA's defaults where it has one: a tolerance of 10 %; up by 4 replicas (or double) per 15 s;
 * down as far as asked per 15 s, once the 5 minutes' window allows it.
 */
export const DEFAULT_BEHAVIOUR: Pick<AutoscalePolicy, 'tolerance' | 'scaleUp' | 'scaleDown'> = {
  tolerance: 0.1,
  scaleUp: { periodMs: 15_000 },
  scaleDown: { periodMs: 15_000, stabilizationMs: 300_000 },
};

/** What the autoscaler keeps of the past, in the replicated state. Times in ms since the epoch. */
export interface AutoscaleHistory {
  /** The recommendations of the scale-down window, oldest first. */
  recommendations: Array<{ at: number; replicas: number }>;
  /** The changes it made within the longer of the two periods, oldest first. */
  changes: Array<{ at: number; from: number; to: number }>;
}

export const NO_HISTORY: AutoscaleHistory = { recommendations: [], changes: [] };

/** What the metrics averaged over the ready replicas when the leader last decided. */
export interface Observed {
  cpu?: number;
  memory?: number;
  rps?: number;
}

/** autoscaling/<stack>.<name>: written by the leader, read by `mesh ls` and `mesh inspect`. */
export interface AutoscaleRecord {
  service: string;
  history: AutoscaleHistory;
  /** When the leader last decided, what it saw, and why it did what it did. */
  decidedAt: number;
  observed: Observed;
  reason: string;
  /** The last few changes of the replica count, oldest first, each with its reason. */
  decisions: Array<{ at: number; from: number; to: number; reason: string }>;
}

/** Decisions `mesh inspect` shows. */
export const DECISIONS_KEPT = 5;

const step = (extra: Record<string, Check> = {}) =>
  object({
    required: { periodMs: integer(1), ...extra },
    optional: { maxStep: integer(1) },
  });

const positive: Check = (value, path) =>
  typeof value === 'number' && Number.isFinite(value) && value > 0
    ? undefined
    : `${path} must be a number > 0`;

const policyShape = object({
  required: {
    min: integer(1),
    max: integer(1),
    targets: object({ required: {}, optional: { cpu: positive, memory: positive, rps: positive } }),
    tolerance: amount,
    scaleUp: step(),
    scaleDown: step({ stabilizationMs: integer(0) }),
  },
});

export const checkAutoscalePolicy: Check = (value, path) => {
  const shape = policyShape(value, path);
  if (shape) return shape;
  const { min, max, targets } = value as AutoscalePolicy;
  if (min > max) return `${path}.min (${min}) must not be above max (${max})`;
  if (!AUTOSCALE_METRICS.some((m) => targets[m] !== undefined))
    return `${path}.targets needs at least one of ${AUTOSCALE_METRICS.join(', ')}`;
  return undefined;
};

const time = integer(0);

export const checkAutoscaleRecord: Check = object({
  required: {
    service: string,
    history: object({
      required: {
        recommendations: listOf(object({ required: { at: time, replicas: integer(0) } })),
        changes: listOf(object({ required: { at: time, from: integer(0), to: integer(0) } })),
      },
    }),
    decidedAt: time,
    observed: object({ required: {}, optional: { cpu: amount, memory: amount, rps: amount } }),
    reason: string,
    decisions: listOf(
      object({ required: { at: time, from: integer(0), to: integer(0), reason: string } }),
    ),
  },
});

/** The replica count nearest to `replicas` that the policy allows. */
export function withinBounds(policy: Pick<AutoscalePolicy, 'min' | 'max'>, replicas: number) {
  return Math.min(policy.max, Math.max(policy.min, replicas));
}
