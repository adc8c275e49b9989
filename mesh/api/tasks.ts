/** Tasks: what the leader plans (one per replica) and what each node reports about them. */
import {
  amount,
  boolean,
  type Check,
  integer,
  listOf,
  nullable,
  object,
  oneOf,
  string,
} from './schema.js';

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
  /** Its service's stop_grace_period when it was made: it still holds once the service is removed. */
  stopGracePeriodMs?: number;
}

const TASK_STATES = [
  'starting',
  'waiting',
  'running',
  'restarting',
  'complete',
  'failed',
  'shutdown',
] as const;

export type TaskState = (typeof TASK_STATES)[number];

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
  /** The container's address on its stack network: where its node reaches it (Docker tasks). */
  address?: string;
  /** TCP ports its container's config exposes: the image's EXPOSE and the declared ones. */
  exposed?: number[];
  /** TCP ports its processes were last seen listening on (not on loopback only), while it runs. */
  listening?: number[];
  /**
   * While running: whether it takes traffic. Ready once it runs (and its healthcheck passes),
   * or, with an x-mesh readiness probe, once the probe passes.
   */
  ready?: boolean;
  /** The readiness probe's latest outcome, in words ("GET /ready: 503"). */
  probe?: string;
  /** Its probe failed failure_threshold times in a row past its start period, and it never was ready. */
  neverReady?: boolean;
  /**
   * Stopped for good, its container (or process's files) kept on its node as the slot's history:
   * removed when the leader lets the task go, or at once when its service is removed.
   */
  kept?: boolean;
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

/** tasks/<id> */
export const checkTask: Check = object({
  required: {
    id: string,
    serviceId: string,
    slot: integer(0),
    serviceVersion: integer(1),
    nodeId: nullable(string),
    desired: oneOf('running', 'shutdown'),
    reservations: object({ required: { cpus: amount, memoryBytes: amount } }),
  },
  optional: { forNode: string, reason: string, createdAt: string, stopGracePeriodMs: integer(0) },
});

const protocol = oneOf('tcp', 'udp');

/** statuses/<task id> */
export const checkStatus: Check = object({
  required: {
    nodeId: string,
    state: oneOf(...TASK_STATES),
    restarts: integer(0),
    since: string,
    ports: listOf(
      object({
        required: { target: integer(1), protocol, hostIp: string, hostPort: integer(0) },
      }),
    ),
  },
  optional: {
    reason: string,
    exitCode: integer(Number.MIN_SAFE_INTEGER),
    address: string,
    exposed: listOf(integer(1)),
    listening: listOf(integer(1)),
    ready: boolean,
    probe: string,
    neverReady: boolean,
    kept: boolean,
  },
});
