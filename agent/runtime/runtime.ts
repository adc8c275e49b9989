import type { Healthcheck } from '../../mesh/api/services.js';
import type { PublishedPort } from '../../mesh/api/tasks.js';

/** What a runtime needs to run one task of a service. */
export interface TaskSpec {
  taskId: string;
  stack: string;
  service: string;
  image: string;
  command?: string[];
  entrypoint?: string[];
  env: Record<string, string>;
  /** Container ports to publish on the node address, each on a host port the engine chooses. */
  ports: Array<{ target: number; protocol: 'tcp' | 'udp' }>;
  labels: Record<string, string>;
  resources: { cpus?: number; memoryBytes?: number };
  stopGracePeriodMs: number;
  /** Docker's `SOURCE:TARGET[:ro]`; the process runtime has none. */
  volumes?: string[];
  healthcheck?: Healthcheck;
}

/** A page of a task's output, and where the next page starts. */
export interface LogPage {
  lines: string[];
  cursor: string;
}

/** What a runtime sees of a task's container or process (the cluster's TaskState says more). */
export type ObservedState = 'running' | 'exited' | 'failed';

/** A task as the runtime sees it now. */
export interface TaskObservation {
  taskId: string;
  state: ObservedState;
  exitCode?: number;
  /** Why it failed or exited, in words (a pull error, an OOM kill, ...). */
  reason?: string;
  /** The host port each published container port landed on. */
  ports: PublishedPort[];
  startedAt?: string;
  /** Only for tasks with a health check, while running. */
  health?: { status: 'starting' | 'healthy' | 'unhealthy'; detail?: string };
}

/** Something ended: the reconciler decides what the restart policy says. */
export interface TaskExit {
  taskId: string;
  exitCode: number;
  reason: string;
}

export class RuntimeError extends Error {
  override name = 'RuntimeError';
}

/** Runs the tasks assigned to this node: Docker containers, or plain processes. */
export interface Runtime {
  start(spec: TaskSpec): Promise<TaskObservation>;
  /** Stops within the grace period (then kills) and removes what the task left behind. */
  remove(taskId: string, graceMs: number): Promise<void>;
  inspect(taskId: string): Promise<TaskObservation | undefined>;
  /**
   * Every task this runtime runs for this node, including ones left by an earlier agent run: a
   * summary of each (inspect has the details, such as why it ended).
   */
  list(): Promise<TaskObservation[]>;
  /** Output since the cursor of an earlier page; without one, the last `tail` lines. */
  logs(taskId: string, cursor: string | undefined, tail: number): Promise<LogPage>;
  /**
   * Called with a task's ID when its process ended or its health changed; inspect says how it is
   * now. Resolves once changes are being watched, so none that follow can be missed.
   */
  onChange(listener: (taskId: string) => void): Promise<void>;
  close(): Promise<void>;
}
