import type { NetworkSettings, ServiceAddress } from '../../mesh/api/network.js';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import { rolledBack, type ServiceRecord, serviceId } from '../../mesh/api/services.js';
import { FINAL_STATES, type TaskRecord, type TaskStatus } from '../../mesh/api/tasks.js';
import type { StoredObject, Write } from '../../mesh/state/cluster-state.js';
import { nodeInfoOf, type ServiceSpec } from '../scheduler/model.js';
import { type SchedulerOptions, schedule } from '../scheduler/scheduler.js';

/** The replicated state the leader plans from. */
export interface ClusterView {
  services: Array<StoredObject<ServiceRecord>>;
  nodes: Array<StoredObject<NodeRecord>>;
  tasks: Array<StoredObject<TaskRecord>>;
  statuses: Map<string, TaskStatus>;
  /** Raft's voters: the managers of node.role constraints. */
  voters: readonly string[];
  settings: NetworkSettings | undefined;
  /** Service addresses by service ID. */
  addresses: Map<string, StoredObject<ServiceAddress>>;
}

function specOf(service: ServiceRecord): ServiceSpec {
  return {
    id: serviceId(service),
    mode: service.mode,
    runtime: service.runtime,
    replicas: service.replicas,
    reservations: service.resources.reservations,
    constraints: service.placement.constraints,
    maxReplicasPerNode: service.placement.maxReplicasPerNode,
    version: service.version,
  };
}

/**
 * Tasks whose replacement by a newer version must wait: the service's update_config allows
 * `parallelism` tasks in flight at a time, `delay` after the last one came up, and pauses when
 * one of the new version failed (failure_action pause).
 */
function heldBack(view: ClusterView, now: number): Set<string> {
  const held = new Set<string>();
  for (const { value: service } of view.services) {
    const id = serviceId(service);
    const own = view.tasks.filter((t) => t.value.serviceId === id && t.value.desired === 'running');
    const outdated = own.filter((t) => t.value.serviceVersion < service.version);
    if (outdated.length === 0) continue;
    const fresh = own
      .filter((t) => t.value.serviceVersion === service.version)
      .map((t) => view.statuses.get(t.id));
    const failed = fresh.some((s) => s?.state === 'failed');
    const inFlight = fresh.filter((s) => s?.state !== 'running').length;
    const lastUp = Math.max(0, ...fresh.map((s) => (s ? Date.parse(s.since) : 0)));
    const { parallelism, delayMs, failureAction } = service.rollingBack
      ? service.rollback
      : service.update;
    let budget = parallelism === 0 ? outdated.length : parallelism - inFlight;
    if ((failed && failureAction === 'pause') || now - lastUp < delayMs) budget = 0;
    for (const task of outdated.sort((a, b) => a.value.slot - b.value.slot).slice(budget))
      held.add(task.id);
  }
  return held;
}

/**
 * The leader's orchestration as a pure step: the scheduler's plan turned into writes (new tasks,
 * tasks told to shut down), and tasks that are finished with removed from the state.
 */
export function orchestrate(
  view: ClusterView,
  now: number,
  options: SchedulerOptions,
  newTaskId: (serviceId: string, slot: number, nodeId: string | null) => string,
): Write[] {
  // failure_action rollback: a task of the new version failed, so the previous one comes back.
  const writes: Write[] = [];
  for (const { value: service, version } of view.services) {
    if (service.rollingBack || !service.previous || service.update.failureAction !== 'rollback')
      continue;
    const id = serviceId(service);
    const failed = view.tasks.some(
      (t) =>
        t.value.serviceId === id &&
        t.value.serviceVersion === service.version &&
        view.statuses.get(t.id)?.state === 'failed',
    );
    if (failed)
      writes.push({
        op: 'put',
        kind: 'services',
        id,
        value: rolledBack(service, new Date(now).toISOString()),
        ifVersion: version,
      });
  }
  // The rollback changes what to plan: plan from the state that holds it, in the next round.
  if (writes.length > 0) return writes;
  const held = heldBack(view, now);
  const tasks = view.tasks.map((t) => t.value);
  // A task held back keeps its slot: the scheduler sees it as current, so leaves it alone.
  const current = new Map(view.services.map(({ value }) => [serviceId(value), value.version]));
  const planned = tasks.map((t) =>
    held.has(t.id) ? { ...t, serviceVersion: current.get(t.serviceId) ?? t.serviceVersion } : t,
  );
  const plan = schedule(
    view.services.map((s) => specOf(s.value)),
    view.nodes.map((node) => nodeInfoOf(node, view.voters)),
    planned,
    now,
    options,
    (service, slot, nodeId) => newTaskId(service.id, slot, nodeId),
  );
  const createdAt = new Date(now).toISOString();
  for (const task of plan.create)
    writes.push({
      op: 'put',
      kind: 'tasks',
      id: task.id,
      value: { ...task, createdAt },
      ifVersion: 0,
    });
  const byId = new Map(view.tasks.map((t) => [t.id, t]));
  for (const { taskId, reason } of plan.stop) {
    const stored = byId.get(taskId);
    if (!stored) continue;
    writes.push({
      op: 'put',
      kind: 'tasks',
      id: taskId,
      value: { ...stored.value, desired: 'shutdown', reason },
      ifVersion: stored.version,
    });
  }
  const stopping = new Set(plan.stop.map((s) => s.taskId));
  const ready = new Set(view.nodes.filter((n) => n.value.status === 'ready').map((n) => n.id));
  for (const { id, value, version } of view.tasks) {
    if (value.desired !== 'shutdown' || stopping.has(id)) continue;
    const status = view.statuses.get(id);
    // Gone for good once its node confirmed it stopped, or its node cannot (down, left, none).
    const done =
      (status !== undefined && FINAL_STATES.has(status.state)) ||
      value.nodeId === null ||
      !ready.has(value.nodeId);
    if (!done) continue;
    writes.push({ op: 'delete', kind: 'tasks', id, ifVersion: version });
    if (status) writes.push({ op: 'delete', kind: 'statuses', id });
  }
  for (const id of view.statuses.keys())
    if (!byId.has(id)) writes.push({ op: 'delete', kind: 'statuses', id });
  return writes;
}
