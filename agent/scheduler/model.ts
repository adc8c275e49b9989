/** What the scheduler reads: desired services, the nodes, and the tasks that exist. */
export interface ServiceSpec {
  /** `${stack}.${service}` */
  id: string;
  mode: 'replicated' | 'global';
  replicas: number;
  /** Reserved per task: a node's reservations never exceed its capacity. */
  reservations: { cpus: number; memoryBytes: number };
  /** Swarm's syntax: node.id, node.hostname or node.labels.KEY, with == or !=. */
  constraints: string[];
  maxReplicasPerNode?: number;
  /** Bumped on every change of the spec; tasks of an older version are replaced. */
  version: number;
}

export interface NodeInfo {
  id: string;
  hostname: string;
  labels: Record<string, string>;
  capacity: { cpus: number; memoryBytes: number };
  /** From membership: down since when (ms), if down. */
  status: 'ready' | 'down' | 'left';
  downSince?: number;
  availability: 'active' | 'drain';
}

export interface Task {
  id: string;
  serviceId: string;
  /** Replicated: 1..replicas. Global: 0 (the node is the slot). */
  slot: number;
  serviceVersion: number;
  /** Null while pending: no node fits. */
  nodeId: string | null;
  /** Global mode: the node this task is for, even while it waits for room there. */
  forNode?: string;
  desired: 'running' | 'shutdown';
  reservations: { cpus: number; memoryBytes: number };
  /** Why it is pending, in words a user can act on. */
  reason?: string;
}

export interface Plan {
  /** New tasks, placed (nodeId set) or pending (nodeId null, reason set). */
  create: Task[];
  /** Tasks to shut down, and why. */
  stop: Array<{ taskId: string; reason: string }>;
}
