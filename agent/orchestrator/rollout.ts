/**
 * Rolling updates as pure steps on the leader: how many outdated tasks may be replaced now, which
 * replaced ones keep running until their successor is ready (start-first), when the new version
 * has failed and what then (pause or roll back), and when the rollout is done.
 */
import {
  replacementOrder,
  rolledBack,
  type ServiceRecord,
  serviceId,
  type UpdatePolicy,
} from '../../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../../mesh/api/tasks.js';
import type { StoredObject, Write } from '../../mesh/state/cluster-state.js';
import type { Plan } from '../scheduler/model.js';

/** What a rollout step reads: one service's running tasks and what their nodes said. */
export interface RolloutView {
  services: Array<StoredObject<ServiceRecord>>;
  tasks: Array<StoredObject<TaskRecord>>;
  statuses: ReadonlyMap<string, TaskStatus>;
}

/** The update_config (or rollback_config, for a rollback) the rollout follows. */
export function policyOf(service: ServiceRecord): UpdatePolicy {
  return service.rollingBack ? service.rollback : service.update;
}

/** A replica's place: its slot, or in global mode its node. */
export function slotKey(task: TaskRecord): string {
  return task.slot > 0 ? `slot ${task.slot}` : `node ${task.forNode ?? task.nodeId ?? task.id}`;
}

const isReady = (status: TaskStatus | undefined) =>
  status?.state === 'running' && status.ready === true;

/**
 * A task of the new version not ready this long after it was created counts as failed, whatever
 * keeps it (no room anywhere, a slow pull, a probe that never passes without one configured):
 * a rollout never waits forever.
 */
export const READY_DEADLINE_MS = 300_000;

/** Why a task of the version being rolled out counts as failed, or undefined while it has not. */
export function failureOf(
  task: TaskRecord,
  status: TaskStatus | undefined,
  now: number,
): string | undefined {
  const age = now - Date.parse(task.createdAt ?? '');
  if (!isReady(status) && age >= READY_DEADLINE_MS)
    return `not ready within ${READY_DEADLINE_MS / 1000}s of its creation (${status?.state ?? 'pending'}${status?.reason || task.reason ? `: ${status?.reason ?? task.reason}` : ''})`;
  if (!status) return undefined;
  const why = status.reason ? `: ${status.reason}` : '';
  if (status.state === 'failed') return `failed${why}`;
  if (status.state === 'restarting' || status.restarts > 0)
    return `restarted ${status.restarts || 1} time(s)${why}`;
  if (status.neverReady) return `never became ready (${status.probe ?? 'no probe result'})`;
  return undefined;
}

/** Where each service's rollout stands: its tasks of the current version, the others, failures. */
export interface Progress {
  service: ServiceRecord;
  current: Array<StoredObject<TaskRecord>>;
  outdated: Array<StoredObject<TaskRecord>>;
  failures: Array<{ taskId: string; why: string }>;
}

export function progressOf(view: RolloutView, now: number): Progress[] {
  return view.services.map(({ value: service }) => {
    const id = serviceId(service);
    const own = view.tasks.filter((t) => t.value.serviceId === id && t.value.desired === 'running');
    const current = own.filter((t) => t.value.serviceVersion === service.version);
    const failures = current.flatMap((t) => {
      const why = failureOf(t.value, view.statuses.get(t.id), now);
      return why ? [{ taskId: t.id, why }] : [];
    });
    return {
      service,
      current,
      outdated: own.filter((t) => t.value.serviceVersion !== service.version),
      failures,
    };
  });
}

/**
 * A rollback restores an earlier version: the tasks still running that version run this
 * definition already, so they are recorded as of the new version and left running.
 */
export function adoptRestored(view: RolloutView): Write[] {
  const writes: Write[] = [];
  for (const { value: service } of view.services) {
    if (service.restores === undefined) continue;
    const id = serviceId(service);
    for (const { id: taskId, value, version } of view.tasks)
      if (
        value.serviceId === id &&
        value.desired === 'running' &&
        value.serviceVersion === service.restores
      )
        writes.push({
          op: 'put',
          kind: 'tasks',
          id: taskId,
          value: { ...value, serviceVersion: service.version },
          ifVersion: version,
        });
  }
  return writes;
}

/**
 * Moves each rollout on: the new version failed beyond max_failure_ratio (pause, or roll back),
 * or every task of it is ready (the monitor period starts), or the monitor period is over.
 */
export function advanceRollouts(view: RolloutView, progress: Progress[], now: number): Write[] {
  const writes: Write[] = [];
  const at = new Date(now).toISOString();
  const stored = new Map(view.services.map((s) => [serviceId(s.value), s.version]));
  for (const { service, current, outdated, failures } of progress) {
    const rollout = service.rollout;
    if (rollout?.state !== 'updating') continue;
    const id = serviceId(service);
    const put = (value: ServiceRecord) =>
      writes.push({ op: 'put', kind: 'services', id, value, ifVersion: stored.get(id) ?? 0 });
    const policy = policyOf(service);
    const tasks = Math.max(1, service.mode === 'global' ? current.length : service.replicas);
    const [first] = failures;
    if (first && failures.length / tasks > policy.maxFailureRatio) {
      if (policy.failureAction === 'continue') continue;
      const message = `task ${first.taskId} ${first.why}`;
      if (policy.failureAction === 'rollback' && !service.rollingBack && service.previous)
        put(rolledBack(service, at, `version ${service.version} rolled back: ${message}`));
      else put({ ...service, rollout: { ...rollout, state: 'paused', message } });
      continue;
    }
    const settled =
      outdated.length === 0 &&
      current.length >= (service.mode === 'global' ? 1 : service.replicas) &&
      current.every((t) => isReady(view.statuses.get(t.id)));
    if (!settled) continue;
    if (!rollout.readyAt) put({ ...service, rollout: { ...rollout, readyAt: at } });
    else if (now - Date.parse(rollout.readyAt) >= policy.monitorMs)
      put({
        ...service,
        rollout: { ...rollout, state: service.rollingBack ? 'rolled-back' : 'completed' },
      });
  }
  return writes;
}

/**
 * Outdated tasks whose replacement must wait: update_config allows `parallelism` replacements in
 * flight (started, not yet ready), `delay` after the last one became ready, and none while the
 * rollout is paused. A task already being replaced (a newer one holds its slot) is not counted.
 */
export function heldBack(view: RolloutView, progress: Progress[], now: number): Set<string> {
  const held = new Set<string>();
  for (const { service, current, outdated, failures } of progress) {
    const replacing = new Set(current.map((t) => slotKey(t.value)));
    const waiting = outdated
      .filter((t) => !replacing.has(slotKey(t.value)))
      .sort((a, b) => a.value.slot - b.value.slot);
    if (waiting.length === 0) continue;
    const failed = new Set(failures.map((f) => f.taskId));
    const statuses = current.map((t) => view.statuses.get(t.id));
    const inFlight = current.filter(
      (t) => !isReady(view.statuses.get(t.id)) && !failed.has(t.id),
    ).length;
    const lastUp = Math.max(0, ...statuses.filter(isReady).map((s) => Date.parse(s?.since ?? '')));
    const { parallelism, delayMs } = policyOf(service);
    let budget = parallelism === 0 ? waiting.length : parallelism - inFlight;
    if (service.rollout?.state === 'paused' || now - lastUp < delayMs) budget = 0;
    for (const task of waiting.slice(Math.max(0, budget))) held.add(task.id);
  }
  return held;
}

/**
 * Start-first: a replaced task keeps running until a ready task of the new version holds its
 * slot, so the service never has fewer ready tasks than before. Unless its replacement found
 * no room (pending): then it stops first, to make that room.
 */
export function keepUntilReplaced(view: RolloutView, plan: Plan): Plan {
  const byId = new Map(view.tasks.map((t) => [t.id, t.value]));
  const services = new Map(view.services.map((s) => [serviceId(s.value), s.value]));
  const successors = new Map<string, TaskRecord[]>();
  for (const task of [...view.tasks.map((t) => t.value), ...plan.create]) {
    const service = services.get(task.serviceId);
    if (task.desired !== 'running' || task.serviceVersion !== service?.version) continue;
    const key = `${task.serviceId} ${slotKey(task)}`;
    successors.set(key, [...(successors.get(key) ?? []), task]);
  }
  const stop = plan.stop.filter(({ taskId, replaced }) => {
    const task = byId.get(taskId);
    const service = task && services.get(task.serviceId);
    if (!replaced || !task || !service || replacementOrder(service) !== 'start-first') return true;
    const next = successors.get(`${task.serviceId} ${slotKey(task)}`) ?? [];
    if (next.some((t) => t.nodeId === null)) return true;
    return next.some((t) => isReady(view.statuses.get(t.id)));
  });
  return { ...plan, stop };
}
