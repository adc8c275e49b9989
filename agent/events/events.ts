import type { AuthoritySetting } from '../../mesh/api/authority.js';
import type { AutoscaleRecord } from '../../mesh/api/autoscale.js';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import type { ServiceRecord } from '../../mesh/api/services.js';
import { FINAL_STATES, type TaskRecord, type TaskStatus } from '../../mesh/api/tasks.js';
import type { Change } from '../../mesh/state/cluster-state.js';
import type { Kind, KindTypes } from '../../mesh/state/kinds.js';
import type { ClusterEvent } from '../control/api.js';

/** An event before the feed numbers and dates it. */
export type Happening = Omit<ClusterEvent, 'seq' | 'time'>;

/**
 * What a write to the replicated state means to an operator, as events: a pure function of the
 * change, so every node, applying the same writes in the same order, tells the same story. A
 * restored snapshot tells nothing (it is not news).
 */
export function eventsOfChange(change: Change): Happening[] {
  if (change.restored) return [];
  const tell = TELLERS[change.kind] as Teller<Kind> | undefined;
  const value = (object?: { value: unknown }) => object?.value as KindTypes[Kind] | undefined;
  return tell?.(change.id, value(change.previous), value(change.object)) ?? [];
}

/** What a write of one kind tells: its ID, the object before and after (undefined: none). */
type Teller<K extends Kind> = (
  id: string,
  before?: KindTypes[K],
  after?: KindTypes[K],
) => Happening[];

const TELLERS: { [K in Kind]?: Teller<K> } = {
  statuses: (id, before, after) => statusEvents(id, before, after),
  tasks: (id, before, after) => taskEvents(id, before, after),
  services: (id, before, after) => serviceEvents(id, before, after),
  nodes: (id, before, after) => nodeEvents(id, before, after),
  autoscaling: (id, before, after) => autoscaleEvents(id, before, after),
  settings: (id, before, after) =>
    id === 'ca' ? caEvents(before as AuthoritySetting, after as AuthoritySetting) : [],
};

/** A node reported its task in a new state (or restarted it). */
function statusEvents(taskId: string, before?: TaskStatus, after?: TaskStatus): Happening[] {
  if (!after) return [];
  const moved = before?.state !== after.state || before.restarts !== after.restarts;
  const readiness = before?.ready !== after.ready && after.state === 'running';
  const events: Happening[] = [];
  if (moved) {
    // The reason of a task that ended already says how it ended ("exited with code 137").
    const ended = after.exitCode !== undefined && FINAL_STATES.has(after.state) && !after.reason;
    const why = [after.reason, ended ? `exit ${after.exitCode}` : ''].filter(Boolean);
    events.push({
      type: 'task',
      action: after.state,
      subject: taskId,
      service: serviceOf(taskId),
      node: after.nodeId,
      ...(why.length > 0 && { reason: why.join('; ') }),
    });
  }
  if (readiness && after.ready !== undefined)
    events.push({
      type: 'task',
      action: after.ready ? 'ready' : 'not-ready',
      subject: taskId,
      service: serviceOf(taskId),
      node: after.nodeId,
      ...(after.probe && { reason: after.probe }),
    });
  return events;
}

/** The leader placed a task, or told one to stop (for its node's sake: a reschedule). */
function taskEvents(taskId: string, before?: TaskRecord, after?: TaskRecord): Happening[] {
  if (!after) return [];
  const where = { service: after.serviceId, ...(after.nodeId && { node: after.nodeId }) };
  if (!before)
    return [
      after.nodeId
        ? { type: 'task', action: 'assigned', subject: taskId, ...where }
        : { type: 'task', action: 'pending', subject: taskId, ...where, reason: after.reason },
    ];
  if (before.nodeId === null && after.nodeId !== null)
    return [{ type: 'task', action: 'assigned', subject: taskId, ...where }];
  if (before.desired === 'running' && after.desired === 'shutdown')
    return [{ type: 'task', action: 'shutdown', subject: taskId, ...where, reason: after.reason }];
  return [];
}

function serviceEvents(id: string, before?: ServiceRecord, after?: ServiceRecord): Happening[] {
  if (!after) return before ? [{ type: 'service', action: 'removed', subject: id }] : [];
  if (!before) return [{ type: 'service', action: 'created', subject: id }];
  const events: Happening[] = [];
  if (after.version !== before.version)
    events.push({
      type: 'service',
      action: after.rollingBack ? 'rollback' : 'updated',
      subject: id,
      reason: `version ${after.version}`,
    });
  const state = after.rollout?.state;
  if (state && (state !== before.rollout?.state || after.version !== before.version))
    events.push({
      type: 'service',
      action: `rollout-${state}`,
      subject: id,
      ...(after.rollout?.message && { reason: after.rollout.message }),
    });
  return events;
}

/** The autoscaler changed a service's replica count: the decision, and why. */
function autoscaleEvents(
  id: string,
  before?: AutoscaleRecord,
  after?: AutoscaleRecord,
): Happening[] {
  const last = after?.decisions.at(-1);
  if (!last || last.at === before?.decisions.at(-1)?.at) return [];
  return [{ type: 'service', action: 'autoscaled', subject: id, reason: last.reason }];
}

function nodeEvents(id: string, before?: NodeRecord, after?: NodeRecord): Happening[] {
  if (!after) return before ? [{ type: 'node', action: 'forgotten', subject: id }] : [];
  const events: Happening[] = [];
  if (!before) events.push({ type: 'node', action: 'joined', subject: id, reason: after.address });
  else if (before.status !== after.status)
    events.push({ type: 'node', action: after.status, subject: id });
  if (before && before.availability !== after.availability)
    events.push({ type: 'node', action: after.availability, subject: id });
  if (before && before.serial !== after.serial)
    events.push({
      type: 'certificate',
      action: 'renewed',
      subject: id,
      reason: `serial ${after.serial}`,
    });
  return events;
}

function caEvents(before?: AuthoritySetting, after?: AuthoritySetting): Happening[] {
  if (!before || !after) return [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!before.next && after.next)
    return [{ type: 'ca', action: 'rotation-started', subject: 'ca' }];
  if (before.next && !after.next && before.certPem !== after.certPem)
    return [{ type: 'ca', action: 'rotation-completed', subject: 'ca' }];
  if (!same(before.sealedSecret, after.sealedSecret))
    return [
      {
        type: 'ca',
        action: 'token-rotated',
        subject: 'manager',
        reason: 'earlier manager tokens no longer work',
      },
    ];
  if (before.sealedWorkerSecret && !same(before.sealedWorkerSecret, after.sealedWorkerSecret))
    return [
      {
        type: 'ca',
        action: 'token-rotated',
        subject: 'worker',
        reason: 'earlier worker tokens no longer work',
      },
    ];
  return [];
}

/** The service of a task ID (`stack.service.slot.suffix`). */
function serviceOf(taskId: string): string {
  return taskId.split('.').slice(0, 2).join('.');
}
