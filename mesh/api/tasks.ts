/** Tasks: what the leader plans (one per replica) and what each node reports about them. */

/** tasks/<id>: written by the leader only. */
export interface TaskRecord {
  id: string;
  /** `${stack}.${service}` */
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
  /** Why it is pending or being shut down, in words a user can act on. */
  reason?: string;
  createdAt?: string;
}

export type TaskState =
  | 'starting'
  | 'waiting'
  | 'running'
  | 'restarting'
  | 'complete'
  | 'failed'
  | 'shutdown';

/** statuses/<task id>: written by the node the task is assigned to. */
export interface TaskStatus {
  nodeId: string;
  state: TaskState;
  reason?: string;
  exitCode?: number;
  restarts: number;
  since: string;
  /** Where each published container port landed on the node. */
  ports: PublishedPort[];
}

/** The states a task ends in: nothing more happens to it unless the leader replaces it. */
export const FINAL_STATES: ReadonlySet<TaskState> = new Set(['complete', 'failed', 'shutdown']);

/** Where a task's container port landed on its node. */
export interface PublishedPort {
  target: number;
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
}
