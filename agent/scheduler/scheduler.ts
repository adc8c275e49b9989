import { fieldOf, satisfies } from './constraints.js';
import type { NodeInfo, Plan, ServiceSpec, Task } from './model.js';

export interface SchedulerOptions {
  /** A node down this long has its tasks placed elsewhere. */
  rescheduleAfterMs: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = { rescheduleAfterMs: 3000 };

const MiB = 2 ** 20;

interface Usage {
  cpus: number;
  memoryBytes: number;
  tasks: number;
  perService: Map<string, number>;
}

/**
 * The scheduler as a pure function (it runs on the leader): desired services, nodes and existing
 * tasks in; tasks to create and tasks to stop out. Deterministic: ties go to the lower node ID.
 */
export function schedule(
  services: ServiceSpec[],
  nodes: NodeInfo[],
  tasks: Task[],
  now: number,
  options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
  newTaskId: (service: ServiceSpec, slot: number, nodeId: string | null) => string = (s, slot, n) =>
    `${s.id}.${slot || n}.${now}`,
): Plan {
  const plan: Plan = { create: [], stop: [] };
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const live = tasks.filter((t) => t.desired === 'running');
  const stop = (task: Task, reason: string, replaced = false) =>
    plan.stop.push({ taskId: task.id, reason, ...(replaced ? { replaced } : {}) });

  // Tasks that must go whatever their service says: the node is drained, gone, or down too long.
  const healthy: Task[] = [];
  for (const task of live) {
    const node = task.nodeId ? byId.get(task.nodeId) : undefined;
    if (task.nodeId && !node) stop(task, `node ${task.nodeId} left the cluster`);
    else if (node?.status === 'left') stop(task, `node ${node.id} left the cluster`);
    else if (
      node?.status === 'down' &&
      now - (node.downSince ?? now) >= options.rescheduleAfterMs
    ) {
      stop(task, `node ${node.id} is down`);
    } else if (node?.availability === 'drain') stop(task, `node ${node.id} is drained`);
    else healthy.push(task);
  }

  const usage = new Map<string, Usage>(
    nodes.map((n) => [n.id, { cpus: 0, memoryBytes: 0, tasks: 0, perService: new Map() }]),
  );
  const use = (nodeId: string, task: Pick<Task, 'serviceId' | 'reservations'>) => {
    const u = usage.get(nodeId) as Usage;
    u.cpus += task.reservations.cpus;
    u.memoryBytes += task.reservations.memoryBytes;
    u.tasks += 1;
    u.perService.set(task.serviceId, (u.perService.get(task.serviceId) ?? 0) + 1);
  };
  for (const task of healthy) if (task.nodeId) use(task.nodeId, task);

  const wanted = new Set(services.map((s) => s.id));
  for (const task of healthy)
    if (!wanted.has(task.serviceId)) stop(task, 'its service was removed');

  for (const service of [...services].sort((a, b) => a.id.localeCompare(b.id))) {
    const own = healthy.filter((t) => t.serviceId === service.id);
    const eligible = nodes
      .filter(
        (n) =>
          n.status === 'ready' &&
          n.availability === 'active' &&
          n.runtimes.includes(service.runtime) &&
          satisfies(n, service.constraints) &&
          (!service.pinned || n.id === service.pinned.nodeId),
      )
      .sort((a, b) => a.id.localeCompare(b.id));

    const fits = (node: NodeInfo) => {
      const u = usage.get(node.id) as Usage;
      return (
        u.cpus + service.reservations.cpus <= node.capacity.cpus + 1e-9 &&
        u.memoryBytes + service.reservations.memoryBytes <= node.capacity.memoryBytes &&
        (service.maxReplicasPerNode === undefined ||
          (u.perService.get(service.id) ?? 0) < service.maxReplicasPerNode)
      );
    };
    /**
     * The task the next one replaces: it leaves its node, so it does not count there when spreading
     * (the replacement stays where it was, and a rollout keeps the spread it found).
     */
    let replacing: Task | undefined;
    const mineOn = (node: NodeInfo) =>
      (usage.get(node.id)?.perService.get(service.id) ?? 0) -
      (replacing?.nodeId === node.id ? 1 : 0);
    /** This service's tasks on the eligible nodes that share the node's value of a field. */
    const mineIn = (node: NodeInfo, field: string) =>
      eligible
        .filter((n) => fieldOf(n, field) === fieldOf(node, field))
        .reduce((sum, n) => sum + mineOn(n), 0);
    /**
     * The best node for one more task: fewest of this service in its group of each spread
     * preference in turn, then on the node, then fewest overall, then lower ID.
     */
    const pick = (only?: NodeInfo): NodeInfo | undefined =>
      (only ? [only] : eligible).filter(fits).sort((a, b) => {
        for (const field of service.spread ?? []) {
          const spread = mineIn(a, field) - mineIn(b, field);
          if (spread) return spread;
        }
        const ua = usage.get(a.id) as Usage;
        const ub = usage.get(b.id) as Usage;
        return mineOn(a) - mineOn(b) || ua.tasks - ub.tasks || a.id.localeCompare(b.id);
      })[0];
    const create = (slot: number, node: NodeInfo | undefined, forNode?: string) => {
      const task: Task = {
        id: newTaskId(service, slot, forNode ?? null),
        serviceId: service.id,
        slot,
        serviceVersion: service.version,
        nodeId: node?.id ?? null,
        forNode,
        desired: 'running',
        reservations: service.reservations,
      };
      if (node) use(node.id, task);
      else task.reason = unplaceable(service, nodes, eligible, usage);
      plan.create.push(task);
    };
    /** Keeps a current task, places a pending one once something fits, replaces an outdated one. */
    const settle = (task: Task | undefined, slot: number, only?: NodeInfo) => {
      const current = task?.serviceVersion === service.version;
      if (task && current && task.nodeId !== null) return;
      replacing = task && !current ? task : undefined;
      const node = pick(only);
      replacing = undefined;
      if (task && current && !node) return; // still pending, for the same reason
      if (task && current) stop(task, 'placed now that a node fits');
      else if (task) stop(task, `service updated to version ${service.version}`, true);
      create(slot, node, only?.id);
    };

    if (service.mode === 'replicated') {
      const bySlot = new Map<number, Task>();
      for (const task of own.sort((a, b) => b.serviceVersion - a.serviceVersion)) {
        const node = task.nodeId ? byId.get(task.nodeId) : undefined;
        // As Swarm's constraint enforcer: a label changed since, so the task goes elsewhere.
        if (node && !satisfies(node, service.constraints))
          stop(task, `node ${node.id} no longer satisfies ${service.constraints.join(', ')}`);
        else if (task.slot > service.replicas) stop(task, `scaled down to ${service.replicas}`);
        else if (bySlot.has(task.slot)) stop(task, 'a newer task holds its slot', true);
        else bySlot.set(task.slot, task);
      }
      for (let slot = 1; slot <= service.replicas; slot++) settle(bySlot.get(slot), slot);
    } else {
      const onNode = new Map<string, Task>();
      for (const task of own.sort((a, b) => b.serviceVersion - a.serviceVersion)) {
        const node = byId.get(task.nodeId ?? task.forNode ?? '');
        if (!node || !eligible.includes(node)) stop(task, 'its node no longer fits the service');
        else if (onNode.has(node.id)) stop(task, 'one task per node in global mode', true);
        else onNode.set(node.id, task);
      }
      for (const node of eligible) settle(onNode.get(node.id), 0, node);
    }
  }
  return plan;
}

/** Why a task of this service fits nowhere, naming what is short. */
function unplaceable(
  service: ServiceSpec,
  nodes: NodeInfo[],
  eligible: NodeInfo[],
  usage: Map<string, Usage>,
): string {
  const ready = nodes.filter((n) => n.status === 'ready' && n.availability === 'active');
  if (service.pinned) {
    const { nodeId, volume } = service.pinned;
    const home = nodes.find((n) => n.id === nodeId);
    const state = !home
      ? 'no longer in the cluster'
      : home.availability === 'drain'
        ? 'drained'
        : home.status === 'ready'
          ? 'short of room or outside the constraints'
          : home.status;
    if (!ready.some((n) => n.id === nodeId && eligible.includes(n)))
      return `its volume ${volume} is on node ${nodeId}, which is ${state}: it waits there rather than start elsewhere on an empty volume`;
  }
  if (ready.length === 0) return 'no node is ready';
  if (!ready.some((n) => n.runtimes.includes(service.runtime)))
    return service.runtime === 'docker'
      ? 'no ready node has a Docker Engine (each agent looks for one every few seconds)'
      : `no ready node runs ${service.runtime} tasks`;
  if (eligible.length === 0)
    return `no node satisfies the constraints: ${service.constraints.join(', ')}`;
  const perNode = service.maxReplicasPerNode;
  if (
    perNode !== undefined &&
    eligible.every((n) => (usage.get(n.id)?.perService.get(service.id) ?? 0) >= perNode)
  ) {
    return `max_replicas_per_node ${perNode} reached on all ${eligible.length} eligible nodes`;
  }
  const need = service.reservations;
  const short = eligible.every(
    (n) => (usage.get(n.id)?.memoryBytes ?? 0) + need.memoryBytes > n.capacity.memoryBytes,
  );
  if (short)
    return `insufficient memory on all ${eligible.length} eligible nodes (needs ${Math.round(need.memoryBytes / MiB)} MiB)`;
  return `insufficient CPU on all ${eligible.length} eligible nodes (needs ${need.cpus})`;
}
