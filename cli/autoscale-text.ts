/** How `mesh ls` and `mesh inspect` put an autoscaled service's bounds, targets and decisions. */
import type { ServiceDetail, ServiceRow } from '../agent/control/api.js';
import { AUTOSCALE_METRICS, type AutoscaleTargets, type Observed } from '../mesh/api/autoscale.js';
import { ago } from './output.js';

const shownValue = (metric: keyof AutoscaleTargets, value: number | undefined) =>
  value === undefined ? '-' : metric === 'rps' ? `${value}` : `${Math.round(value)}%`;

/** `cpu 84%/60%, rps 12.5/50`: each target, what was last seen against it. */
function targetsText(targets: AutoscaleTargets, observed: Observed = {}): string {
  return AUTOSCALE_METRICS.filter((m) => targets[m] !== undefined)
    .map((m) => `${m} ${shownValue(m, observed[m])}/${shownValue(m, targets[m])}`)
    .join(', ');
}

/** `auto 2–10, cpu 84%/60%`, for the REPLICAS column. */
export function autoscaleShort(autoscale: NonNullable<ServiceRow['autoscale']>): string {
  return `auto ${autoscale.min}–${autoscale.max}, ${targetsText(autoscale.targets, autoscale.observed)}`;
}

/** What `mesh inspect` adds for an autoscaled service: policy, the last look, the last changes. */
export function autoscaleLines(spec: ServiceDetail): string[] {
  const policy = spec.autoscale;
  if (!policy) return [];
  const record = spec.autoscaling;
  const seconds = (ms: number) => `${ms / 1000}s`;
  const step = (s: { maxStep?: number; periodMs: number }, unset: string) =>
    `${s.maxStep === undefined ? unset : `≤${s.maxStep}`} per ${seconds(s.periodMs)}`;
  const at = (ms: number) => ago(new Date(ms).toISOString());
  return [
    `  autoscale: ${policy.min}–${policy.max} replicas on ${targetsText(policy.targets, record?.observed)} (per replica); tolerance ${Math.round(policy.tolerance * 100)}%; up ${step(policy.scaleUp, '4 or double')}; down ${step(policy.scaleDown, 'any')} after a ${seconds(policy.scaleDown.stabilizationMs)} window`,
    record
      ? `  last decision ${at(record.decidedAt)}: ${record.reason}`
      : '  last decision: none yet (the leader decides every 5s once replicas report)',
    ...(record?.decisions ?? []).map((d) => `    ${at(d.at)}: ${d.reason}`),
  ];
}
