/**
 * x-mesh autoscale: the replica bounds, the targets (cpu and memory in percent of the service's
 * reservation or limit, rps per ready replica) and the behaviour, with Kubernetes' HPA defaults.
 * Every mistake names its key.
 */
import {
  AUTOSCALE_METRICS,
  type AutoscalePolicy,
  DEFAULT_BEHAVIOUR,
  type StepLimit,
} from '../../mesh/api/autoscale.js';
import { autoscaleMisfit, type ServiceDefinition } from '../../mesh/api/services.js';
import { type KeyPath, Located } from './source.js';
import { parseDuration } from './values.js';

type Raw = Record<string, unknown>;

const KEYS = ['min', 'max', ...AUTOSCALE_METRICS, 'tolerance', 'scale_up', 'scale_down'];
const UP_KEYS = ['max_step', 'period'];
const DOWN_KEYS = ['stabilization', 'max_step', 'period'];

function mapping(value: unknown, path: KeyPath, keys: readonly string[]): Raw {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Located(path, `must be a mapping (${keys.join(', ')})`);
  for (const key of Object.keys(value))
    if (!keys.includes(key))
      throw new Located([...path, key], `unknown autoscale setting (${keys.join(', ')})`);
  return value as Raw;
}

function wholeNumber(value: unknown, path: KeyPath, least: number): number {
  if (!Number.isSafeInteger(value) || (value as number) < least)
    throw new Located(path, `must be a whole number >= ${least}`);
  return value as number;
}

/** 60 or "60%": a percentage above 0. */
function percentage(value: unknown, path: KeyPath): number {
  const text = String(value).trim();
  const n = Number(text.endsWith('%') ? text.slice(0, -1) : text);
  if (typeof value === 'boolean' || text === '' || !Number.isFinite(n) || n <= 0)
    throw new Located(path, `must be a percentage above 0 (like 60 or "60%"), not ${text}`);
  return n;
}

function duration(value: unknown, path: KeyPath, fallback: number, least = 1): number {
  if (value === undefined) return fallback;
  let ms: number;
  try {
    ms = parseDuration(value as string);
  } catch (error) {
    throw new Located(path, (error as Error).message);
  }
  if (ms < least) throw new Located(path, `must be at least ${least} ms`);
  return ms;
}

function stepOf(raw: Raw, path: KeyPath, fallback: StepLimit): StepLimit {
  const step: StepLimit = {
    periodMs: duration(raw.period, [...path, 'period'], fallback.periodMs),
  };
  if (raw.max_step !== undefined)
    step.maxStep = wholeNumber(raw.max_step, [...path, 'max_step'], 1);
  return step;
}

/**
 * The policy of `x-mesh: {autoscale: …}` at `path`, checked against the service it scales: its
 * mode, its resources, and its declared replica count (which must lie within the bounds; without
 * one, the service starts at min).
 */
export function autoscaleOf(
  value: unknown,
  path: KeyPath,
  service: ServiceDefinition,
  declaredReplicas: unknown,
): AutoscalePolicy {
  const raw = mapping(value, path, KEYS);
  if (raw.max === undefined) throw new Located(path, 'needs max, the most replicas it may run');
  const min = raw.min === undefined ? 1 : wholeNumber(raw.min, [...path, 'min'], 1);
  const max = wholeNumber(raw.max, [...path, 'max'], 1);
  if (min > max) throw new Located([...path, 'min'], `(${min}) must not be above max (${max})`);
  const targets: AutoscalePolicy['targets'] = {};
  for (const metric of AUTOSCALE_METRICS)
    if (raw[metric] !== undefined) targets[metric] = percentage(raw[metric], [...path, metric]);
  if (Object.keys(targets).length === 0)
    throw new Located(path, `needs a target: at least one of ${AUTOSCALE_METRICS.join(', ')}`);
  const up = mapping(raw.scale_up ?? {}, [...path, 'scale_up'], UP_KEYS);
  const down = mapping(raw.scale_down ?? {}, [...path, 'scale_down'], DOWN_KEYS);
  const policy: AutoscalePolicy = {
    min,
    max,
    targets,
    tolerance:
      raw.tolerance === undefined
        ? DEFAULT_BEHAVIOUR.tolerance
        : percentage(raw.tolerance, [...path, 'tolerance']) / 100,
    scaleUp: stepOf(up, [...path, 'scale_up'], DEFAULT_BEHAVIOUR.scaleUp),
    scaleDown: {
      ...stepOf(down, [...path, 'scale_down'], DEFAULT_BEHAVIOUR.scaleDown),
      stabilizationMs: duration(
        down.stabilization,
        [...path, 'scale_down', 'stabilization'],
        DEFAULT_BEHAVIOUR.scaleDown.stabilizationMs,
        0,
      ),
    },
  };
  const misfit = autoscaleMisfit({ ...service, autoscale: policy });
  if (misfit)
    throw new Located(misfit.key === 'autoscale' ? path : [...path, misfit.key], misfit.message);
  if (declaredReplicas !== undefined && (service.replicas < min || service.replicas > max))
    throw new Located(
      path,
      `deploy.replicas (${service.replicas}) is outside min ${min} and max ${max}: the autoscaler keeps the count within them`,
    );
  return policy;
}
