/**
 * One round of the leader's autoscaler as a pure function: from the replicated state and what the
 * nodes last reported, each autoscaled service's observation, the decision, and the writes that
 * keep it (the new replica count, the record a new leader takes over). The nodes' side of it, a
 * task's usage in percent of its reservation, is here too.
 */
import {
  type AutoscaleRecord,
  DECISIONS_KEPT,
  NO_HISTORY,
  type Observed,
} from '../../mesh/api/autoscale.js';
import { type ServiceRecord, serviceId } from '../../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../../mesh/api/tasks.js';
import type { Write } from '../../mesh/state/cluster-state.js';
import { decide, type Observation } from './decide.js';

/** What a node tells the leader every sample: percentages and rates, never raw samples. */
export interface UsageReport {
  /** Its running tasks of autoscaled services, in percent of each one's reservation (or limit). */
  tasks: Array<{ task: string; cpu?: number; memory?: number }>;
  /** Requests plus connections per second it served, per autoscaled service with an rps target. */
  served: Array<{ service: string; rps: number }>;
}

/** A node's latest report, and when the leader got it (its own clock). */
export interface Heard {
  node: string;
  at: number;
  report: UsageReport;
}

/** A report older than this is not counted: its node stopped reporting (gone, or cut off). */
export const REPORT_STALE_MS = 15_000;

/** The record is written at least this often while anything in it changes, and at each scale. */
export const RECORD_EVERY_MS = 15_000;

export interface AutoscaleView {
  services: Array<{ value: ServiceRecord; version: number }>;
  tasks: TaskRecord[];
  statuses: ReadonlyMap<string, TaskStatus>;
  records: ReadonlyMap<string, AutoscaleRecord>;
}

/** A task that takes its share of the load: told to run, running and ready on its node. */
function isReady(task: TaskRecord, status: TaskStatus | undefined): boolean {
  return (
    task.desired === 'running' &&
    status?.state === 'running' &&
    status.ready === true &&
    status.nodeId === task.nodeId
  );
}

/** What the service looks like now: its ready replicas, their usage, its request rate. */
export function observe(
  service: ServiceRecord,
  tasks: readonly TaskRecord[],
  statuses: ReadonlyMap<string, TaskStatus>,
  heard: readonly Heard[],
  now: number,
): Observation {
  const id = serviceId(service);
  const fresh = heard.filter((h) => h.at > now - REPORT_STALE_MS);
  const ready = tasks.filter((t) => t.serviceId === id && isReady(t, statuses.get(t.id)));
  const usage = ready.flatMap((task) => {
    // Only the node the task is assigned to speaks for it.
    const sample = fresh
      .find((h) => h.node === task.nodeId)
      ?.report.tasks.find((s) => s.task === task.id);
    return sample ? [{ cpu: sample.cpu, memory: sample.memory }] : [];
  });
  const served = fresh.flatMap((h) => h.report.served.filter((s) => s.service === id));
  const observation: Observation = { now, replicas: service.replicas, ready: ready.length, usage };
  if (served.length > 0) observation.rps = served.reduce((sum, s) => sum + s.rps, 0);
  return observation;
}

/** The averages `mesh ls` shows: over the replicas with metrics; rps per ready replica. */
export function averages(observation: Observation): Observed {
  const observed: Observed = {};
  for (const metric of ['cpu', 'memory'] as const) {
    const values = observation.usage.flatMap((u) => (u[metric] === undefined ? [] : [u[metric]]));
    if (values.length > 0)
      observed[metric] = round(values.reduce((sum, v) => sum + v, 0) / values.length);
  }
  if (observation.rps !== undefined && observation.ready > 0)
    observed.rps = round(observation.rps / observation.ready);
  return observed;
}

const round = (n: number) => Math.round(n * 10) / 10;

/** A scaling the leader made: for its log. */
export interface Scaling {
  service: string;
  from: number;
  to: number;
  reason: string;
}

/** One service's writes, proposed together: the new count (if any) and the record. */
export interface AutoscaleBatch {
  writes: Write[];
  scaling?: Scaling;
}

/**
 * The writes of one round, a batch per service (one refused leaves the others be): for each
 * autoscaled replicated service not in the middle of a rollout, its new replica count when the
 * decision changes it, and its record when it scaled, when metrics appeared or went, or when the
 * record is older than RECORD_EVERY_MS; the record of a service no longer autoscaled goes.
 */
export function autoscaleRound(
  view: AutoscaleView,
  heard: readonly Heard[],
  now: number,
): AutoscaleBatch[] {
  const batches: AutoscaleBatch[] = [];
  const autoscaled = new Set<string>();
  for (const { value: service, version } of view.services) {
    const policy = service.autoscale;
    if (!policy || service.mode !== 'replicated') continue;
    const id = serviceId(service);
    autoscaled.add(id);
    // A rollout replaces tasks: counting them would scale on a passing crowd.
    if (service.rollout?.state === 'updating') continue;
    const stored = view.records.get(id);
    const observation = observe(service, view.tasks, view.statuses, heard, now);
    const decision = decide(policy, observation, stored?.history ?? NO_HISTORY);
    const from = service.replicas;
    const to = decision.replicas;
    const observed = averages(observation);
    // Metrics that appear (or go) are worth telling at once: `no metrics yet` is not news for long.
    const sameMetrics = Object.keys(observed).join() === Object.keys(stored?.observed ?? {}).join();
    if (to === from && stored && sameMetrics && now - stored.decidedAt < RECORD_EVERY_MS) continue;
    const decisions = stored?.decisions ?? [];
    const { reason } = decision;
    const record: AutoscaleRecord = {
      service: id,
      history: decision.history,
      decidedAt: now,
      observed,
      reason,
      decisions:
        to === from
          ? decisions
          : [...decisions, { at: now, from, to, reason }].slice(-DECISIONS_KEPT),
    };
    const keep: Write = { op: 'put', kind: 'autoscaling', id, value: record };
    if (to === from) batches.push({ writes: [keep] });
    else
      batches.push({
        writes: [
          {
            op: 'put',
            kind: 'services',
            id,
            value: { ...service, replicas: to },
            ifVersion: version,
          },
          keep,
        ],
        scaling: { service: id, from, to, reason },
      });
  }
  for (const id of view.records.keys())
    if (!autoscaled.has(id)) batches.push({ writes: [{ op: 'delete', kind: 'autoscaling', id }] });
  return batches;
}
