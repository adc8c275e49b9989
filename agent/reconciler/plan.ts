import {
  definitionFor,
  type ReadinessProbe,
  type RuntimeKind,
  type ServiceRecord,
} from '../../mesh/api/services.js';
import { FINAL_STATES, type TaskRecord, type TaskStatus } from '../../mesh/api/tasks.js';
import { declaredPorts } from '../../proxy/routing-table.js';
import type { ProbeTarget } from '../health/probes.js';
import type { TaskObservation } from '../runtime/runtime.js';

/** A task's container or process as one of the node's runtimes sees it. */
export interface Observed {
  runtime: RuntimeKind;
  seen: TaskObservation;
}

/** What a reconcile round looks at: this node's tasks and containers, and the cluster around them. */
export interface NodeView {
  /** The tasks the leader assigned to this node. */
  tasks: TaskRecord[];
  services: ReadonlyMap<string, ServiceRecord>;
  /** What this node last said about each task, or else what the cluster holds. */
  statuses: ReadonlyMap<string, TaskStatus>;
  /** Every task the node's runtimes run, by task ID. */
  observed: ReadonlyMap<string, Observed>;
  /** Tasks whose readiness probe this agent runs. */
  probed: ReadonlySet<string>;
  /** When each task's container was last looked at (ms). */
  lookedAt: ReadonlyMap<string, number>;
  /** Tasks with an operation in flight: a round leaves them to it. */
  busy: ReadonlySet<string>;
  /** When each task waiting out its restart delay may start again (ms). */
  restartAt: ReadonlyMap<string, number>;
  /** How each task waiting out its restart delay last ended, in words. */
  lastExit: ReadonlyMap<string, string>;
  /** Services with a running task anywhere in the cluster, by ID (for depends_on). */
  runningServices: ReadonlySet<string>;
  /** Why a runtime kind this node lacks is missing; a kind not here is offered. */
  missingRuntimes: ReadonlyMap<RuntimeKind, string>;
  /**
   * This node has not heard from a leader for long enough that the leader may be placing its
   * tasks elsewhere: at-most-once tasks stop, and do not start, until it hears again.
   */
  cutOff: boolean;
  now: number;
}

/** What a round does; the shell looks at a container again before it acts on it. */
export type Action =
  /** A task this node runs but should not (no longer assigned, or cut off): stop and remove it. */
  | { type: 'remove'; taskId: string; runtime: RuntimeKind; because: 'unassigned' | 'cut-off' }
  /** A task told to shut down: stop it within its grace period, then report it shut down. */
  | { type: 'shutdown'; task: TaskRecord; runtime: RuntimeKind }
  /** Start the task's container or process. */
  | { type: 'start'; task: TaskRecord; service: ServiceRecord }
  /** Its restart delay is over: remove what is left of it (if anything), so that the next round starts it. */
  | { type: 'restart'; taskId: string; runtime?: RuntimeKind }
  /** Look at the container now: it may have ended, come up, turned unhealthy, or need its probe. */
  | { type: 'inspect'; taskId: string; runtime: RuntimeKind }
  /** Tell the cluster about the task, with nothing to do to it. */
  | {
      type: 'report';
      taskId: string;
      status: Partial<Pick<TaskStatus, 'state' | 'reason' | 'kept'>>;
    };

/**
 * A running container is looked at again this often: the ports its processes listen on (which
 * its service address answers on) follow what the app does.
 */
export const LOOK_AGAIN_MS = 2000;

const isFinal = (status: TaskStatus | undefined) =>
  status !== undefined && FINAL_STATES.has(status.state);

/**
 * One reconcile round as a pure step: from this node's assigned tasks, what its runtimes run and
 * what is known of each task, the actions that move the node towards its assignment.
 */
export function reconcile(view: NodeView): Action[] {
  const actions: Action[] = [];
  const assigned = new Set(view.tasks.map((t) => t.id));
  for (const [taskId, { runtime }] of view.observed)
    if (!assigned.has(taskId) && !view.busy.has(taskId))
      actions.push({ type: 'remove', taskId, runtime, because: 'unassigned' });
  for (const task of view.tasks) {
    if (view.busy.has(task.id)) continue;
    const here = view.observed.get(task.id);
    const status = view.statuses.get(task.id);
    if (view.cutOff && view.services.get(task.serviceId)?.atMostOnce) {
      if (here)
        actions.push({
          type: 'remove',
          taskId: task.id,
          runtime: here.runtime,
          because: 'cut-off',
        });
      continue;
    }
    if (task.desired === 'shutdown') {
      // Stopped and reported: kept as history until the leader removes the task, unless its
      // service is gone (then nothing of it stays).
      const letGo = status?.kept === true && !view.services.has(task.serviceId);
      if (here && (here.seen.state === 'running' || !isFinal(status) || letGo))
        actions.push({ type: 'shutdown', task, runtime: here.runtime });
      else if (!here && status?.kept)
        // Removed behind our back: nothing is kept any more.
        actions.push({ type: 'report', taskId: task.id, status: { kept: false } });
      else if (!here && !isFinal(status))
        actions.push({
          type: 'report',
          taskId: task.id,
          status: stoppedStatus(status, view.lastExit.get(task.id), task.reason),
        });
      continue;
    }
    const restartAt = view.restartAt.get(task.id);
    if (restartAt !== undefined) {
      // Waiting out its restart delay, or done waiting.
      if (restartAt <= view.now)
        actions.push({ type: 'restart', taskId: task.id, runtime: here?.runtime });
    } else if (!here) {
      const start = isFinal(status) ? undefined : startOrWait(task, view);
      if (start) actions.push(start);
    } else if (here.seen.state !== 'running') {
      // It ended while nobody was watching (the agent was down, or an event was missed).
      if (!isFinal(status))
        actions.push({ type: 'inspect', taskId: task.id, runtime: here.runtime });
    } else if (
      status?.state !== 'running' ||
      here.seen.health?.status === 'unhealthy' ||
      // Running, but nobody probes it (this agent restarted): a look starts its probe.
      (view.services.get(task.serviceId)?.readiness && !view.probed.has(task.id)) ||
      (here.runtime === 'docker' && view.now - (view.lookedAt.get(task.id) ?? 0) >= LOOK_AGAIN_MS)
    ) {
      actions.push({ type: 'inspect', taskId: task.id, runtime: here.runtime });
    }
  }
  return actions;
}

/**
 * How a task told to stop ended: failed, when it was waiting to start again after failing (a
 * rollout gave up on it; ps -a should say why it failed, not that a newer task took its slot);
 * else shut down, for the leader's reason.
 */
export function stoppedStatus(
  status: TaskStatus | undefined,
  lastExit: string | undefined,
  reason: string | undefined,
): Partial<TaskStatus> {
  if (status?.state === 'restarting' && lastExit) return { state: 'failed', reason: lastExit };
  return { state: 'shutdown', reason };
}

/** Starts a task, unless its runtime is missing here or a service it depends on runs nowhere. */
function startOrWait(task: TaskRecord, view: NodeView): Action | undefined {
  const current = view.services.get(task.serviceId);
  // Removed meanwhile, or the task's version is forgotten: the leader shuts it down.
  const service = current && definitionFor(task, current);
  if (!service) return undefined;
  const missing = view.missingRuntimes.get(service.runtime);
  if (missing)
    return { type: 'report', taskId: task.id, status: { state: 'failed', reason: missing } };
  const waitingFor = service.dependsOn.filter(
    (name) => !view.runningServices.has(`${service.stack}.${name}`),
  );
  if (waitingFor.length > 0)
    return {
      type: 'report',
      taskId: task.id,
      status: {
        state: 'waiting',
        reason: `waiting for ${waitingFor.join(', ')} to run (depends_on)`,
      },
    };
  return { type: 'start', task, service };
}

/** What is watched of a running task until it is ready. */
export type ReadinessCheck =
  | { type: 'probe'; probe: ReadinessProbe; target: ProbeTarget }
  /** A probe with no address to reach the task at: not ready, saying so. */
  | { type: 'unprobeable'; port: number }
  /** No healthcheck nor probe: ready once these ports accept connections. */
  | { type: 'ports'; address: string; ports: number[] };

/** What a container seen running means: ended (its health check fails), or what to report. */
export type RunningVerdict =
  | { type: 'ended'; reason: string }
  | { type: 'report'; status: Partial<TaskStatus>; check?: ReadinessCheck };

/**
 * A running task is running once its health check (if it has one) passes; a failing one is
 * treated as a crash (its restart policy decides). Then it is ready at once when nothing is
 * checked, else once its probe, or its ports, say so.
 */
export function runningVerdict(
  seen: TaskObservation,
  service: ServiceRecord | undefined,
): RunningVerdict {
  const { ports, health, address, exposed, listening } = seen;
  if (health?.status === 'unhealthy')
    return { type: 'ended', reason: `health check failing (${health.detail})` };
  if (health?.status === 'starting')
    return {
      type: 'report',
      status: {
        state: 'starting',
        reason: 'waiting for its health check',
        ports,
        exposed,
        listening,
      },
    };
  const probe = service?.readiness;
  const target = probe && probeTarget(seen, probe.port);
  // A task without a healthcheck nor a probe is ready once its ports accept connections.
  const waitFor = !probe && !health && service ? portsCheck(service, seen) : undefined;
  const status: Partial<TaskStatus> = {
    state: 'running',
    reason: undefined,
    ports,
    address,
    exposed,
    listening,
    ...(probe || waitFor ? {} : { ready: true }),
  };
  if (probe && target) return { type: 'report', status, check: { type: 'probe', probe, target } };
  if (probe) return { type: 'report', status, check: { type: 'unprobeable', port: probe.port } };
  if (waitFor) return { type: 'report', status, check: { type: 'ports', ...waitFor } };
  return { type: 'report', status };
}

/**
 * The ports a container is known to serve and must accept connections on to be ready: those the
 * stack file declares or, when it declares none, those its image exposes (an image may expose
 * ports that only some settings open; a file that names its ports says which matter). Ports
 * seen listening are open by then.
 */
function portsToCheck(service: ServiceRecord, seen: TaskObservation): number[] {
  const declared = declaredPorts(service).map((p) => p.target);
  return declared.length > 0 ? declared : (seen.exposed ?? []);
}

/**
 * Where this node checks them: on the container's address, or, for a process (no address of its
 * own), on the host ports it was given for them. None to check: undefined.
 */
function portsCheck(
  service: ServiceRecord,
  seen: TaskObservation,
): { address: string; ports: number[] } | undefined {
  const targets = portsToCheck(service, seen);
  if (targets.length === 0) return undefined;
  if (seen.address) return { address: seen.address, ports: targets };
  const given = seen.ports.filter((p) => p.protocol === 'tcp' && targets.includes(p.target));
  const [first] = given;
  return first && { address: first.hostIp, ports: given.map((p) => p.hostPort) };
}

/** Where this node reaches a task's port: the container's address, or where a process published it. */
function probeTarget(seen: TaskObservation, port: number): ProbeTarget | undefined {
  if (seen.address) return { host: seen.address, port };
  const published = seen.ports.find((p) => p.target === port && p.protocol === 'tcp');
  return published && { host: published.hostIp, port: published.hostPort };
}
