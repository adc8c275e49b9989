/**
 * The cluster's data model: what `mesh deploy` writes (stacks, services), what the leader plans
 * (tasks) and what each node reports about the tasks it runs (statuses). Types only; every node
 * holds all of it in its replica.
 */

export interface PortSpec {
  target: number;
  protocol: 'tcp' | 'udp';
  /** The port the user asked to publish; the routing mesh serves it (the host port is the engine's choice). */
  published?: number;
}

/** Swarm's restart_policy; compose's `restart:` maps onto it. */
export interface RestartPolicy {
  condition: 'none' | 'on-failure' | 'any';
  delayMs: number;
  /** 0: no limit. */
  maxAttempts: number;
  /** Restarts counted within this window; 0: since the task started. */
  windowMs: number;
}

export interface UpdatePolicy {
  /** Tasks replaced at a time; 0: all at once. */
  parallelism: number;
  delayMs: number;
  order: 'stop-first' | 'start-first';
  failureAction: 'pause' | 'continue' | 'rollback';
}

export interface Healthcheck {
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** One service of a stack, as the user declared it (normalized from the compose file). */
export interface ServiceDefinition {
  stack: string;
  name: string;
  runtime: 'docker' | 'process';
  image: string;
  command?: string[];
  entrypoint?: string[];
  env: Record<string, string>;
  ports: PortSpec[];
  expose: number[];
  /** Docker's `SOURCE:TARGET[:ro]` form: a named volume (per node) or a host path. */
  volumes: string[];
  /** Put on each container. */
  labels: Record<string, string>;
  /** deploy.labels: on the service, for people and tools. */
  serviceLabels: Record<string, string>;
  healthcheck?: Healthcheck;
  stopGracePeriodMs: number;
  /** Services of the same stack whose tasks must run before this one's start. */
  dependsOn: string[];
  mode: 'replicated' | 'global';
  replicas: number;
  resources: {
    limits: { cpus?: number; memoryBytes?: number };
    reservations: { cpus: number; memoryBytes: number };
  };
  placement: { constraints: string[]; maxReplicasPerNode?: number };
  restartPolicy: RestartPolicy;
  update: UpdatePolicy;
  rollback: UpdatePolicy;
}

/** services/<stack>.<name> */
export interface ServiceRecord extends ServiceDefinition {
  /** Bumped when anything but the replica count changes: tasks of older versions are replaced. */
  version: number;
  updatedAt: string;
  /** What ran before the last update, for `mesh rollback` and failure_action rollback. */
  previous?: ServiceDefinition;
  /** This version is a rollback: it rolls out per rollback_config, and is not rolled back itself. */
  rollingBack?: boolean;
}

/** stacks/<name> */
export interface StackRecord {
  name: string;
  services: string[];
  deployedAt: string;
}

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
  ports: Array<{ target: number; protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number }>;
}

/** The states a task ends in: nothing more happens to it unless the leader replaces it. */
export const FINAL_STATES: ReadonlySet<TaskState> = new Set(['complete', 'failed', 'shutdown']);
