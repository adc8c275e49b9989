import { fieldOf, satisfies } from './constraints.js';
import type { NodeInfo, Plan, ServiceSpec, Task } from './model.js';

export interface SchedulerOptions {
  /** A node down this long has its tasks placed elsewhere. */
  rescheduleAfterMs: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = { rescheduleAfterMs: 3000 };
/**
 * How long the tasks of a node that said it restarts (SIGHUP) wait for it: an agent upgraded and
 * started again by systemd is back within seconds, its tasks still running there.
 */
export const RESTART_GRACE_MS = 60_000;

/** How long a down node's tasks stay on it before they are placed elsewhere. */
function graceOf(node: NodeInfo, options: SchedulerOptions): number {
  return node.restarting
    ? Math.max(RESTART_GRACE_MS, options.rescheduleAfterMs)
    : options.rescheduleAfterMs;
}

const MiB = 2 ** 20;

interface Usage {
  cpus: number;
  memoryBytes: number;
  tasks: number;
  perService: Map<string, number>;
}

type NewTaskId = (service: ServiceSpec, slot: number, nodeId: string | null) => string;

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
  newTaskId: NewTaskId = (s, slot, n) => `${s.id}.${slot || n}.${now}`,
): Plan {
  const round = new Round(nodes, newTaskId);
  const healthy = tasks
    .filter((t) => t.desired === 'running')
    .filter((task) => round.keepsNode(task, now, options));
  for (const task of healthy) if (task.nodeId) round.use(task.nodeId, task);
  const wanted = new Set(services.map((s) => s.id));
  for (const task of healthy)
    if (!wanted.has(task.serviceId)) round.stop(task, 'its service was removed');
  for (const service of [...services].sort((a, b) => a.id.localeCompare(b.id))) {
    const placement = new Placement(round, service);
    const own = healthy
      .filter((t) => t.serviceId === service.id)
      .sort((a, b) => b.serviceVersion - a.serviceVersion);
    if (service.mode === 'replicated') placement.replicated(own);
    else placement.global(own);
  }
  return round.plan;
}

/** One scheduling round: the plan it writes, and what each node holds as tasks are placed. */
class Round {
  readonly plan: Plan = { create: [], stop: [] };
  readonly byId: Map<string, NodeInfo>;
  readonly usage: Map<string, Usage>;

  constructor(
    readonly nodes: NodeInfo[],
    readonly newTaskId: NewTaskId,
  ) {
    this.byId = new Map(nodes.map((n) => [n.id, n]));
    this.usage = new Map(
      nodes.map((n) => [n.id, { cpus: 0, memoryBytes: 0, tasks: 0, perService: new Map() }]),
    );
  }

  stop(task: Task, reason: string, replaced = false): void {
    this.plan.stop.push({ taskId: task.id, reason, ...(replaced ? { replaced } : {}) });
  }

  /** Whatever its service says, a task goes when its node is gone, down too long, or drained. */
  keepsNode(task: Task, now: number, options: SchedulerOptions): boolean {
    const why = this.leaving(task, now, options);
    if (why) this.stop(task, why);
    return why === undefined;
  }

  private leaving(task: Task, now: number, options: SchedulerOptions): string | undefined {
    const node = task.nodeId ? this.byId.get(task.nodeId) : undefined;
    if (task.nodeId && !node) return `node ${task.nodeId} left the cluster`;
    if (!node) return undefined;
    if (node.status === 'left') return `node ${node.id} left the cluster`;
    const graceMs = graceOf(node, options);
    if (node.status === 'down' && now - (node.downSince ?? now) >= graceMs)
      return node.restarting
        ? `node ${node.id} did not come back within ${graceMs / 1000} s of its restart`
        : `node ${node.id} is down`;
    if (node.availability === 'drain') return `node ${node.id} is drained`;
    return undefined;
  }

  use(nodeId: string, task: Pick<Task, 'serviceId' | 'reservations'>): void {
    const u = this.usage.get(nodeId) as Usage;
    u.cpus += task.reservations.cpus;
    u.memoryBytes += task.reservations.memoryBytes;
    u.tasks += 1;
    u.perService.set(task.serviceId, (u.perService.get(task.serviceId) ?? 0) + 1);
  }
}

/** Where the tasks of one service go in a round. */
class Placement {
  /** The nodes it may run on, by ID. */
  private readonly eligible: NodeInfo[];
  /**
   * The task the next one replaces: it leaves its node, so it does not count there when spreading
   * (the replacement stays where it was, and a rollout keeps the spread it found).
   */
  private replacing: Task | undefined;

  constructor(
    private readonly round: Round,
    private readonly service: ServiceSpec,
  ) {
    this.eligible = round.nodes
      .filter(
        (n) =>
          n.status === 'ready' &&
          n.availability === 'active' &&
          n.runtimes.includes(service.runtime) &&
          satisfies(n, service.constraints) &&
          (!service.pinned || n.id === service.pinned.nodeId),
      )
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /** A task a slot; the newest of a slot is kept, the rest stopped. */
  replicated(own: Task[]): void {
    const { service, round } = this;
    const bySlot = new Map<number, Task>();
    for (const task of own) {
      const node = task.nodeId ? round.byId.get(task.nodeId) : undefined;
      // As Swarm's constraint enforcer: a label changed since, so the task goes elsewhere.
      if (node && !satisfies(node, service.constraints))
        round.stop(task, `node ${node.id} no longer satisfies ${service.constraints.join(', ')}`);
      else if (task.slot > service.replicas) round.stop(task, `scaled down to ${service.replicas}`);
      else if (bySlot.has(task.slot)) round.stop(task, 'a newer task holds its slot', true);
      else bySlot.set(task.slot, task);
    }
    for (let slot = 1; slot <= service.replicas; slot++) this.settle(bySlot.get(slot), slot);
  }

  /** A task on each eligible node. */
  global(own: Task[]): void {
    const { round } = this;
    const onNode = new Map<string, Task>();
    for (const task of own) {
      const node = round.byId.get(task.nodeId ?? task.forNode ?? '');
      if (!node || !this.eligible.includes(node))
        round.stop(task, 'its node no longer fits the service');
      else if (onNode.has(node.id)) round.stop(task, 'one task per node in global mode', true);
      else onNode.set(node.id, task);
    }
    for (const node of this.eligible) this.settle(onNode.get(node.id), 0, node);
  }

  /** Keeps a current task, places a pending one once something fits, replaces an outdated one. */
  private settle(task: Task | undefined, slot: number, only?: NodeInfo): void {
    const { service, round } = this;
    const current = task?.serviceVersion === service.version;
    if (task && current && task.nodeId !== null) return;
    this.replacing = task && !current ? task : undefined;
    const node = this.pick(only);
    this.replacing = undefined;
    if (task && current && !node) return; // still pending, for the same reason
    if (task && current) round.stop(task, 'placed now that a node fits');
    else if (task) round.stop(task, `service updated to version ${service.version}`, true);
    this.create(slot, node, only?.id);
  }

  /**
   * The best node for one more task: fewest of this service in its group of each spread
   * preference in turn, then on the node, then fewest overall, then lower ID.
   */
  private pick(only?: NodeInfo): NodeInfo | undefined {
    const { usage } = this.round;
    return (only ? [only] : this.eligible)
      .filter((n) => this.fits(n))
      .sort((a, b) => {
        for (const field of this.service.spread ?? []) {
          const spread = this.mineIn(a, field) - this.mineIn(b, field);
          if (spread) return spread;
        }
        const tasksOn = (n: NodeInfo) => (usage.get(n.id) as Usage).tasks;
        return (
          this.mineOn(a) - this.mineOn(b) || tasksOn(a) - tasksOn(b) || a.id.localeCompare(b.id)
        );
      })[0];
  }

  private fits(node: NodeInfo): boolean {
    const { service } = this;
    const u = this.round.usage.get(node.id) as Usage;
    return (
      u.cpus + service.reservations.cpus <= node.capacity.cpus + 1e-9 &&
      u.memoryBytes + service.reservations.memoryBytes <= node.capacity.memoryBytes &&
      (service.maxReplicasPerNode === undefined ||
        (u.perService.get(service.id) ?? 0) < service.maxReplicasPerNode)
    );
  }

  /** This service's tasks on the node, less the one being replaced there. */
  private mineOn(node: NodeInfo): number {
    const here = this.round.usage.get(node.id)?.perService.get(this.service.id) ?? 0;
    return here - (this.replacing?.nodeId === node.id ? 1 : 0);
  }

  /** This service's tasks on the eligible nodes that share the node's value of a field. */
  private mineIn(node: NodeInfo, field: string): number {
    return this.eligible
      .filter((n) => fieldOf(n, field) === fieldOf(node, field))
      .reduce((sum, n) => sum + this.mineOn(n), 0);
  }

  private create(slot: number, node: NodeInfo | undefined, forNode?: string): void {
    const { service, round } = this;
    const task: Task = {
      id: round.newTaskId(service, slot, forNode ?? null),
      serviceId: service.id,
      slot,
      serviceVersion: service.version,
      nodeId: node?.id ?? null,
      forNode,
      desired: 'running',
      reservations: service.reservations,
    };
    if (node) round.use(node.id, task);
    else task.reason = unplaceable(service, round.nodes, this.eligible, round.usage);
    round.plan.create.push(task);
  }
}

/** Why a task waits for a node, as a metric label: what unplaceable() found short. */
export type PendingCause =
  | 'volume'
  | 'no-node'
  | 'runtime'
  | 'constraints'
  | 'max-per-node'
  | 'memory'
  | 'cpu'
  | 'other';

/** Each reason unplaceable() gives, by how it starts (its test checks every one is here). */
const PENDING_CAUSES: Array<[RegExp, PendingCause]> = [
  [/^its volume /, 'volume'],
  [/^no node is ready/, 'no-node'],
  [/^no ready node (has a Docker Engine|runs )/, 'runtime'],
  [/^no node satisfies the constraints/, 'constraints'],
  [/^max_replicas_per_node /, 'max-per-node'],
  [/^insufficient memory/, 'memory'],
  [/^insufficient CPU/, 'cpu'],
];

export function pendingCause(reason: string): PendingCause {
  return PENDING_CAUSES.find(([pattern]) => pattern.test(reason))?.[1] ?? 'other';
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
