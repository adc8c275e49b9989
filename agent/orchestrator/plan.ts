import type { NetworkSettings, ServiceAddress } from '../../mesh/api/network.js';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import { type ServiceRecord, serviceId } from '../../mesh/api/services.js';
import { FINAL_STATES, type TaskRecord, type TaskStatus } from '../../mesh/api/tasks.js';
import type { VolumeRecord } from '../../mesh/api/volumes.js';
import type { StoredObject, Write } from '../../mesh/state/cluster-state.js';
import type { NodeFit } from '../control/api.js';
import { nodeFits } from '../scheduler/fit.js';
import { nodeInfoOf, type ServiceSpec } from '../scheduler/model.js';
import { type SchedulerOptions, schedule } from '../scheduler/scheduler.js';
import {
  adoptRestored,
  advanceRollouts,
  heldBack,
  keepUntilReplaced,
  progressOf,
} from './rollout.js';

/** Finished tasks kept per slot for `mesh ps -a` and `mesh logs --task` (Swarm keeps 5). */
export const HISTORY_PER_SLOT = 5;

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
  /** Where each pinning volume lives, by name. */
  volumes: ReadonlyMap<string, VolumeRecord>;
}

/** The node a service's data lives on: the first of its pinning volumes that has one. */
function pinOf(
  service: ServiceRecord,
  volumes: ReadonlyMap<string, VolumeRecord>,
): ServiceSpec['pinned'] {
  if (service.mode === 'global') return undefined; // a volume per node, as many as nodes
  for (const volume of service.namedVolumes ?? []) {
    const record = volume.pinned ? volumes.get(volume.name) : undefined;
    if (record) return { nodeId: record.nodeId, volume: volume.name };
  }
  return undefined;
}

function specOf(service: ServiceRecord, volumes: ReadonlyMap<string, VolumeRecord>): ServiceSpec {
  return {
    pinned: pinOf(service, volumes),
    id: serviceId(service),
    mode: service.mode,
    runtime: service.runtime,
    replicas: service.replicas,
    reservations: service.resources.reservations,
    constraints: service.placement.constraints,
    maxReplicasPerNode: service.placement.maxReplicasPerNode,
    spread: service.placement.preferences,
    version: service.version,
  };
}

/** Per node, whether a task of the service fits there (see nodeFits); undefined: no such service. */
export function fitsOf(view: ClusterView, id: string): NodeFit[] | undefined {
  const service = view.services.find((s) => s.id === id)?.value;
  if (!service) return undefined;
  return nodeFits(
    specOf(service, view.volumes),
    view.nodes.map((node) => nodeInfoOf(node, view.voters)),
    view.tasks.map((t) => t.value),
  );
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
  // Each of these changes what to plan: plan from the state that holds it, in the next round.
  const adopted = adoptRestored(view);
  if (adopted.length > 0) return adopted;
  const progress = progressOf(view, now);
  const advanced = advanceRollouts(view, progress, now);
  if (advanced.length > 0) return advanced;
  const held = heldBack(view, progress, now);
  const tasks = view.tasks.map((t) => t.value);
  // A task held back keeps its slot: the scheduler sees it as current, so leaves it alone.
  const current = new Map(view.services.map(({ value }) => [serviceId(value), value.version]));
  const planned = tasks.map((t) =>
    held.has(t.id) ? { ...t, serviceVersion: current.get(t.serviceId) ?? t.serviceVersion } : t,
  );
  const scheduled = schedule(
    view.services.map((s) => specOf(s.value, view.volumes)),
    view.nodes.map((node) => nodeInfoOf(node, view.voters)),
    planned,
    now,
    options,
    (service, slot, nodeId) => newTaskId(service.id, slot, nodeId),
  );
  const plan = keepUntilReplaced(view, scheduled);
  const writes: Write[] = [];
  const createdAt = new Date(now).toISOString();
  const graceOf = new Map(view.services.map((s) => [s.id, s.value.stopGracePeriodMs]));
  for (const task of plan.create)
    writes.push({
      op: 'put',
      kind: 'tasks',
      id: task.id,
      value: { ...task, createdAt, stopGracePeriodMs: graceOf.get(task.serviceId) },
      ifVersion: 0,
    });
  writes.push(...pinWrites(view, plan.create, createdAt));
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
  for (const { id, version } of pastHistory(view, stopping)) {
    writes.push({ op: 'delete', kind: 'tasks', id, ifVersion: version });
    if (view.statuses.has(id)) writes.push({ op: 'delete', kind: 'statuses', id });
  }
  for (const id of view.statuses.keys())
    if (!byId.has(id)) writes.push({ op: 'delete', kind: 'statuses', id });
  return writes;
}

/**
 * Tasks that are finished with are kept as the slot's history, the last HISTORY_PER_SLOT of each
 * (Swarm's task history limit): `mesh ps -a` shows how they ended and `mesh logs --task` reads
 * them, while their node keeps what they left. Older ones go, and every finished task of a
 * service that is gone, or of a node that cannot keep it (down, left, none).
 */
function pastHistory(view: ClusterView, stopping: ReadonlySet<string>): StoredObject<TaskRecord>[] {
  const ready = new Set(view.nodes.filter((n) => n.value.status === 'ready').map((n) => n.id));
  const services = new Set(view.services.map((s) => s.id));
  const slots = new Map<string, StoredObject<TaskRecord>[]>();
  const gone: StoredObject<TaskRecord>[] = [];
  for (const task of view.tasks) {
    const { id, value } = task;
    if (value.desired !== 'shutdown' || stopping.has(id)) continue;
    const status = view.statuses.get(id);
    const kept = value.nodeId !== null && ready.has(value.nodeId);
    if (!kept || !services.has(value.serviceId)) {
      // Its node cannot confirm it stopped: gone at once. Its service is gone: once its node
      // says nothing of it is kept (so that once the tasks are gone, nothing is left).
      const done = status !== undefined && FINAL_STATES.has(status.state) && !status.kept;
      if (!kept || done) gone.push(task);
      continue;
    }
    if (status === undefined || !FINAL_STATES.has(status.state)) continue; // still stopping
    // A global service's slot is its node.
    const slot = `${value.serviceId}/${value.slot}/${value.slot === 0 ? value.nodeId : ''}`;
    slots.set(slot, [...(slots.get(slot) ?? []), task]);
  }
  for (const tasks of slots.values()) {
    const newestFirst = tasks.sort((a, b) =>
      (b.value.createdAt ?? '').localeCompare(a.value.createdAt ?? ''),
    );
    gone.push(...newestFirst.slice(HISTORY_PER_SLOT));
  }
  return gone;
}

/**
 * A pinning volume is made where its service's first task lands: from then on the service runs
 * on that node (or waits for it).
 */
function pinWrites(view: ClusterView, created: TaskRecord[], pinnedAt: string): Write[] {
  const services = new Map(view.services.map(({ value }) => [serviceId(value), value]));
  const pins = new Map<string, VolumeRecord>();
  for (const task of created) {
    const service = services.get(task.serviceId);
    if (!task.nodeId || !service || service.mode === 'global') continue;
    for (const volume of service.namedVolumes ?? [])
      if (volume.pinned && !view.volumes.has(volume.name) && !pins.has(volume.name))
        pins.set(volume.name, { name: volume.name, nodeId: task.nodeId, pinnedAt });
  }
  return [...pins.values()].map(
    (value): Write => ({ op: 'put', kind: 'volumes', id: value.name, value, ifVersion: 0 }),
  );
}
