import { type NodeRecord, nodeLabels } from '../../mesh/api/nodes.js';
import type { TaskRecord } from '../../mesh/api/tasks.js';
import type { StoredObject } from '../../mesh/state/cluster-state.js';

/** What the scheduler reads: desired services, the nodes, and the tasks that exist. */
export interface ServiceSpec {
  /** `${stack}.${service}` */
  id: string;
  mode: 'replicated' | 'global';
  /** Only nodes that offer this runtime get its tasks. */
  runtime: 'docker' | 'process';
  replicas: number;
  /** Reserved per task: a node's reservations never exceed its capacity. */
  reservations: { cpus: number; memoryBytes: number };
  /** Swarm's syntax: node.id, .hostname, .role, .platform.os|arch or .labels.KEY; == or !=. */
  constraints: string[];
  maxReplicasPerNode?: number;
  /**
   * placement.preferences spread: node fields (`node.labels.zone`) whose values the tasks are
   * spread across, in order, before they are spread across nodes.
   */
  spread?: string[];
  /** Its data lives in a volume on this node: its tasks run there, or wait for it. */
  pinned?: { nodeId: string; volume: string };
  /** Bumped on every change of the spec; tasks of an older version are replaced. */
  version: number;
}

export interface NodeInfo {
  id: string;
  hostname: string;
  labels: Record<string, string>;
  /** The task runtimes this node offers: process always, docker when an engine answers. */
  runtimes: string[];
  capacity: { cpus: number; memoryBytes: number };
  /** Manager: a Raft voter; worker: any other node (Swarm's node.role). */
  role: 'manager' | 'worker';
  platform?: { os: string; arch: string };
  /** From membership: down since when (ms), if down. */
  status: 'ready' | 'down' | 'left';
  downSince?: number;
  /** It said it restarts, its tasks left running: they wait for it longer while it is down. */
  restarting?: boolean;
  availability: 'active' | 'drain';
}

/** The scheduler plans tasks as the cluster stores them. */
export type Task = TaskRecord;

export interface Plan {
  /** New tasks, placed (nodeId set) or pending (nodeId null, reason set). */
  create: Task[];
  /**
   * Tasks to shut down, and why. `replaced`: a task of a newer version takes its slot; an update
   * in start-first order keeps it running until that one is ready.
   */
  stop: Array<{ taskId: string; reason: string; replaced?: boolean }>;
}

/** A node as the scheduler sees it, from what the cluster records and who the voters are. */
export function nodeInfoOf(
  { id, value }: StoredObject<NodeRecord>,
  voters: readonly string[],
): NodeInfo {
  const unreachable = value.status === 'suspect' || value.status === 'down';
  return {
    id,
    hostname: value.hostname,
    labels: nodeLabels(value),
    role: voters.includes(id) ? 'manager' : 'worker',
    platform: value.platform,
    runtimes: value.runtimes,
    capacity: value.capacity,
    // Joining: not up yet, so nothing is placed there; removed: gone for good.
    status:
      value.status === 'suspect'
        ? 'down'
        : value.status === 'removed' || value.status === 'joining'
          ? 'left'
          : value.status,
    downSince: unreachable ? value.since : undefined,
    ...(value.restarting && { restarting: true }),
    availability: value.availability,
  };
}
