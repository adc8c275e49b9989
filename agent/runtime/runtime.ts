import type { RegistryAuth } from '../../mesh/api/registries.js';
import type {
  ContainerSettings,
  Healthcheck,
  NamedVolume,
  PullPolicy,
} from '../../mesh/api/services.js';
import type { PublishedPort } from '../../mesh/api/tasks.js';

/** What a runtime needs to run one task of a service. */
export interface TaskSpec {
  taskId: string;
  stack: string;
  service: string;
  image: string;
  /** Docker: when to pull the image (absent: when it is missing). */
  pull?: PullPolicy;
  /** Docker: the login for the image's registry, when one is stored (`mesh registry login`). */
  registryAuth?: RegistryAuth;
  command?: string[];
  entrypoint?: string[];
  env: Record<string, string>;
  /**
   * The service's ports. Docker publishes on the node address only those in mode host (on their
   * published port); the routing mesh reaches the others at the container's address. A process
   * gets a free host port for each.
   */
  ports: Array<{ target: number; protocol: 'tcp' | 'udp'; hostPort?: number; hostIp?: string }>;
  /** Docker: the networks (by key) the container joins, and the cluster DNS it uses. */
  network?: TaskNetwork;
  labels: Record<string, string>;
  resources: { cpus?: number; memoryBytes?: number };
  stopGracePeriodMs: number;
  /** Docker's `SOURCE:TARGET[:ro]`; the process runtime has none. */
  volumes?: string[];
  /** The named volumes among them: made (with their driver and options) before the container. */
  namedVolumes?: NamedVolume[];
  healthcheck?: Healthcheck;
  /** Docker: compose's per-container settings, applied by the engine. */
  container?: ContainerSettings;
  /** Secrets and configs: files on the node's tmpfs, and where each goes in the container. */
  files?: TaskFile[];
}

export interface TaskFile {
  /** The file on this node. */
  source: string;
  /** Its path in the container (the process runtime passes the directories instead). */
  target: string;
}

export interface TaskNetwork {
  /** `<stack>_<name>` or an external network's name; the first is where its node reaches it. */
  keys: string[];
  /** Each node's bridges take a /24 from here. */
  bridgeRange: string;
  /** The cluster DNS, and the search domain that makes compose's short names resolve. */
  dnsServer: string;
  search: string;
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
  /** Where this node reaches the container: its address on its first network. */
  address?: string;
  /** Docker: TCP ports the container's config exposes (its image's EXPOSE and the declared). */
  exposed?: number[];
  /** Docker, while running: TCP ports listened on in its network namespace, not loopback only. */
  listening?: number[];
  startedAt?: string;
  /** Only for tasks with a health check, while running. */
  health?: { status: 'starting' | 'healthy' | 'unhealthy'; detail?: string };
}

/** What a running task has used: for autoscaling, which turns the CPU time into a rate. */
export interface TaskUsage {
  /** CPU time since it started, in nanoseconds. */
  cpuNs: number;
  /** Memory in use now (without the page cache it could give back), in bytes. */
  memoryBytes: number;
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
  /**
   * Stops within the grace period (then kills), keeping what it left (its container, its logs)
   * until remove: a finished task's history.
   */
  stop(taskId: string, graceMs: number): Promise<void>;
  inspect(taskId: string): Promise<TaskObservation | undefined>;
  /**
   * Every task this runtime runs for this node, including ones left by an earlier agent run: a
   * summary of each (inspect has the details, such as why it ended).
   */
  list(): Promise<TaskObservation[]>;
  /** What each of these tasks uses; one that is not running here is left out. */
  usage(taskIds: readonly string[]): Promise<Map<string, TaskUsage>>;
  /** Output since the cursor of an earlier page; without one, the last `tail` lines. */
  logs(taskId: string, cursor: string | undefined, tail: number): Promise<LogPage>;
  /**
   * Called with a task's ID when its process ended or its health changed; inspect says how it is
   * now. Resolves once changes are being watched, so none that follow can be missed.
   */
  onChange(listener: (taskId: string) => void): Promise<void>;
  close(): Promise<void>;
}
