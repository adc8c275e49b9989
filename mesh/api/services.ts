/**
 * Services: what `mesh deploy` writes, one record per service of a stack, and the pure helpers on
 * them. Every node holds all of them in its replica.
 */

import { isDeepStrictEqual } from 'node:util';
import { type AutoscalePolicy, checkAutoscalePolicy, withinBounds } from './autoscale.js';
import {
  amount,
  boolean,
  type Check,
  type Fields,
  integer,
  listOf,
  mapOf,
  object,
  oneOf,
  string,
} from './schema.js';
import { checkFileRef, type FileRef } from './secrets.js';
import { name } from './stacks.js';
import type { TaskRecord } from './tasks.js';

/** Where a service's tasks run: Docker containers, or plain processes (x-mesh runtime: process). */
export type RuntimeKind = 'docker' | 'process';

/** When a node pulls a task's image (pull_policy): before each task, only when missing, never. */
export type PullPolicy = 'always' | 'missing' | 'never';

export interface PortSpec {
  target: number;
  protocol: 'tcp' | 'udp';
  /** The port the user asked to publish: on every node through the routing mesh, or with mode host on the task's node only. */
  published?: number;
  /** Compose's `mode: host`: the engine publishes the port on the task's node; absent: ingress (the routing mesh). */
  mode?: 'host';
  /**
   * Published on this address only: a loopback one on each node's loopback (reachable from the
   * node itself), another only on the node whose address it is. Absent: each node's address.
   */
  hostIp?: string;
}

/** x-mesh routes: a hostname (and path prefix) the HTTP ingress sends to this service. */
export interface HttpRouteSpec {
  /** Lower case, as a DNS name. */
  host: string;
  /** A path prefix, starting with "/": the longest matching prefix wins. */
  path: string;
  /** The container port requests go to. */
  port: number;
  /** Take the prefix off the path before forwarding (/api/users → /users). */
  stripPrefix: boolean;
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
  /**
   * start-first: a replacement runs (and is ready) before the task it replaces stops. A task that
   * cannot run twice is replaced stop-first whatever this says (see `replacementOrder`).
   */
  order: 'stop-first' | 'start-first';
  failureAction: 'pause' | 'continue' | 'rollback';
  /** How long the new version is watched for failures once every task of it is ready. */
  monitorMs: number;
  /** Failed tasks of the new version tolerated, as a fraction of its tasks, before failureAction. */
  maxFailureRatio: number;
}

/**
 * x-mesh readiness: run by the agent of the task's node against the task's own address; only a
 * ready task is an endpoint (DNS, L4, HTTP). Without one, a task is ready once it runs (and its
 * healthcheck, if any, passes).
 */
export interface ReadinessProbe {
  /** An HTTP GET answered with 2xx or 3xx, or a TCP connection accepted. */
  kind: 'http' | 'tcp';
  port: number;
  /** http: the path asked for. */
  path?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Failures in a row that make a ready task not ready (and a task never ready give up). */
  failureThreshold: number;
  /** Successes in a row that make a task ready. */
  successThreshold: number;
  /** Failures before this long after the start do not count. */
  startPeriodMs: number;
}

export interface Healthcheck {
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/**
 * Per-container settings of Compose that the engine applies as they are (docker runtime only):
 * who runs it, its file system, kernel limits, signals, logging.
 */
export interface ContainerSettings {
  user?: string;
  workingDir?: string;
  hostname?: string;
  domainname?: string;
  init?: boolean;
  readOnly?: boolean;
  /** `PATH[:OPTIONS]`, as compose's tmpfs. */
  tmpfs?: string[];
  ulimits?: Record<string, { soft: number; hard: number }>;
  capAdd?: string[];
  capDrop?: string[];
  stopSignal?: string;
  sysctls?: Record<string, string>;
  shmSizeBytes?: number;
  /** `HOST:ADDRESS` lines for /etc/hosts. */
  extraHosts?: string[];
  securityOpt?: string[];
  tty?: boolean;
  stdinOpen?: boolean;
  groupAdd?: string[];
  /** pids_limit, or deploy.resources.limits.pids. */
  pidsLimit?: number;
  oomScoreAdj?: number;
  /** `os[/arch[/variant]]` the image is run for. */
  platform?: string;
  /** Without a driver: the engine's default one, with these options. */
  logging?: { driver?: string; options: Record<string, string> };
}

/** A named volume a service mounts. */
export interface NamedVolume {
  /** The engine's name for it: `<stack>_<key>`, or its own name when external or named. */
  name: string;
  /**
   * Its data must not be lost: the service runs on the node where the volume was made, and
   * waits for that node rather than start elsewhere on an empty one. External and scratch
   * volumes do not pin.
   */
  pinned: boolean;
  driver?: string;
  driverOpts?: Record<string, string>;
}

/** One service of a stack, as the user declared it (normalized from the compose file). */
export interface ServiceDefinition {
  stack: string;
  name: string;
  runtime: RuntimeKind;
  image: string;
  /** pull_policy; absent: pulled when missing. */
  pull?: PullPolicy;
  /**
   * Raised by `mesh service update --force`: a new version with the same spec, so every task is
   * replaced (as Swarm's ForceUpdate). A deploy keeps it.
   */
  forceUpdate?: number;
  command?: string[];
  entrypoint?: string[];
  env: Record<string, string>;
  ports: PortSpec[];
  expose: number[];
  /**
   * The networks its tasks join, by key (`<stack>_<name>`, or an external network's own name);
   * absent: the stack's default network. Services reach each other only through a shared one.
   */
  networks?: string[];
  /** Docker's `SOURCE:TARGET[:ro]` form: a named volume (per node) or a host path. */
  volumes: string[];
  /** The named volumes among them. */
  namedVolumes?: NamedVolume[];
  /** Put on each container. */
  labels: Record<string, string>;
  /** deploy.labels: on the service, for people and tools. */
  serviceLabels: Record<string, string>;
  healthcheck?: Healthcheck;
  readiness?: ReadinessProbe;
  stopGracePeriodMs: number;
  /** Services of the same stack whose tasks must run before this one's start. */
  dependsOn: string[];
  mode: 'replicated' | 'global';
  replicas: number;
  resources: {
    limits: { cpus?: number; memoryBytes?: number };
    reservations: { cpus: number; memoryBytes: number };
  };
  /** preferences: node fields (`node.labels.zone`) to spread tasks across the values of. */
  placement: { constraints: string[]; maxReplicasPerNode?: number; preferences?: string[] };
  restartPolicy: RestartPolicy;
  update: UpdatePolicy;
  rollback: UpdatePolicy;
  /**
   * x-mesh at_most_once: never two copies of a task, even across a partition: a node cut off from
   * the leader stops its tasks before the leader could have started replacements.
   */
  atMostOnce?: boolean;
  /** x-mesh routes: hostnames and path prefixes served by the HTTP ingress on every node. */
  routes?: HttpRouteSpec[];
  /**
   * x-mesh autoscale: the leader sets the replica count between min and max from what the
   * replicas use and serve. Like the replica count, it is not part of the task template.
   */
  autoscale?: AutoscalePolicy;
  container?: ContainerSettings;
  /** Secrets (files under /run/secrets, by default) and configs it reads, each at a version. */
  secrets?: FileRef[];
  configs?: FileRef[];
}

/**
 * Where the rollout of a service's current version stands, written by the leader as it drives it.
 * updating → completed, or → paused / rolled back (a rollback is a rollout of its own:
 * rolling-back → rolled-back, or → paused).
 */
export interface RolloutStatus {
  state: 'updating' | 'completed' | 'paused' | 'rolled-back';
  startedAt: string;
  /** When every task of this version was first seen ready: the monitor period runs from here. */
  readyAt?: string;
  /** Why it paused or rolled back, naming the task. */
  message?: string;
}

/** services/<stack>.<name> */
export interface ServiceRecord extends ServiceDefinition {
  /** Bumped when anything but the replica count changes: tasks of older versions are replaced. */
  version: number;
  updatedAt: string;
  /** What ran before the last update, for `mesh rollback` and failure_action rollback. */
  previous?: ServiceDefinition;
  /** The version `previous` was. */
  previousVersion?: number;
  /** This version is a rollback: it rolls out per rollback_config, and is not rolled back itself. */
  rollingBack?: boolean;
  /**
   * A rollback: the version whose definition this one restores. Its tasks run this definition
   * already, so the leader counts them as of this version: they are kept, not restarted.
   */
  restores?: number;
  /** Absent until the first update: a new service just starts. */
  rollout?: RolloutStatus;
}

/** A service's ID: `${stack}.${name}`. */
export function serviceId(service: Pick<ServiceDefinition, 'stack' | 'name'>): string {
  return `${service.stack}.${service.name}`;
}

/** The definition the user declared, without what the cluster keeps beside it. */
export function definitionOf(record: ServiceRecord): ServiceDefinition {
  const {
    version: _version,
    updatedAt: _updatedAt,
    previous: _previous,
    previousVersion: _previousVersion,
    rollingBack: _rollingBack,
    restores: _restores,
    rollout: _rollout,
    ...definition
  } = record;
  return definition;
}

/** What a deploy did to a service it declares. */
export type ServiceChange = 'created' | 'updated' | 'scaled' | 'unchanged';

/** The task template: everything but how many replicas run (scaling replaces no task). */
function template(definition: ServiceDefinition): ServiceDefinition {
  const { autoscale: _autoscale, ...rest } = definition;
  return { ...rest, replicas: 0 };
}

/**
 * How many replicas a deploy asks for: the file's count, except that an autoscaled service keeps
 * the count its autoscaler reached (within the new bounds): a deploy does not undo its work.
 */
function replicasAfterDeploy(stored: ServiceRecord | undefined, next: ServiceDefinition): number {
  if (!next.autoscale) return next.replicas;
  return withinBounds(next.autoscale, stored?.autoscale ? stored.replicas : next.replicas);
}

/**
 * A service's record after a deploy of this definition: a changed template is a new version (the
 * one before kept for rollback, a rollout started); a changed replica count only scales.
 */
export function updatedRecord(
  stored: ServiceRecord | undefined,
  definition: ServiceDefinition,
  now: string,
): { record: ServiceRecord; change: ServiceChange } {
  // What the cluster keeps beside a definition (versions, rollout) is not part of it.
  const next = definitionOf(definition as ServiceRecord);
  next.replicas = replicasAfterDeploy(stored, next);
  const before = stored && definitionOf(stored);
  const changed = !before || !isDeepStrictEqual(template(before), template(next));
  const version = (stored?.version ?? 0) + (changed ? 1 : 0);
  const change = !before
    ? 'created'
    : changed
      ? 'updated'
      : before.replicas !== next.replicas || !isDeepStrictEqual(before.autoscale, next.autoscale)
        ? 'scaled'
        : 'unchanged';
  const record: ServiceRecord =
    stored && !changed
      ? withAutoscale({ ...stored, replicas: next.replicas, updatedAt: now }, next.autoscale)
      : { ...next, version, updatedAt: now };
  if (stored && changed)
    Object.assign(record, {
      previous: before,
      previousVersion: stored.version,
      rollout: { state: 'updating', startedAt: now },
    });
  return { record, change };
}

function withAutoscale(record: ServiceRecord, policy: AutoscalePolicy | undefined): ServiceRecord {
  if (policy) record.autoscale = policy;
  else delete record.autoscale;
  return record;
}

/**
 * The service as it was before its last update, as a new version that rolls out per
 * rollback_config and replaces only the tasks of the version it undoes.
 */
export function rolledBack(service: ServiceRecord, updatedAt: string, why?: string): ServiceRecord {
  const { previous, previousVersion } = service;
  if (!previous) throw new Error(`service ${serviceId(service)} has no earlier version`);
  const record: ServiceRecord = withAutoscale(
    {
      ...previous,
      // Scaling since then stays: a rollback restores the task template, not the replica count.
      replicas: service.replicas,
      version: service.version + 1,
      updatedAt,
      previous: definitionOf(service),
      previousVersion: service.version,
      rollingBack: true,
      rollout: { state: 'updating', startedAt: updatedAt, ...(why ? { message: why } : {}) },
    },
    service.autoscale,
  );
  if (previousVersion !== undefined) record.restores = previousVersion;
  return record;
}

/**
 * How a service's tasks are replaced: its update order, except stop-first for a task that cannot
 * run twice at once: one that publishes a port on its node (mode host), keeps data in a named
 * volume, or runs at most once.
 */
export function replacementOrder(service: ServiceRecord): UpdatePolicy['order'] {
  const policy = service.rollingBack ? service.rollback : service.update;
  if (policy.order === 'stop-first') return 'stop-first';
  const hostPort = service.ports.some((p) => p.mode === 'host' && p.published !== undefined);
  const namedVolume = service.namedVolumes?.some((v) => v.pinned) ?? false;
  return hostPort || namedVolume || service.atMostOnce ? 'stop-first' : 'start-first';
}

/** An object whose fields are all required. */
const shape = (fields: Record<string, Check>) => object({ required: fields });
const updatePolicy = shape({
  parallelism: integer(0),
  delayMs: integer(0),
  order: oneOf('stop-first', 'start-first'),
  failureAction: oneOf('pause', 'continue', 'rollback'),
  monitorMs: integer(0),
  maxFailureRatio: amount,
});

const definitionFields: Fields = {
  required: {
    stack: name,
    name,
    runtime: oneOf('docker', 'process'),
    image: string,
    env: mapOf(string),
    ports: listOf(
      object({
        required: { target: integer(1), protocol: oneOf('tcp', 'udp') },
        optional: { published: integer(1), mode: oneOf('host'), hostIp: string },
      }),
    ),
    expose: listOf(integer(1)),
    volumes: listOf(string),
    labels: mapOf(string),
    serviceLabels: mapOf(string),
    stopGracePeriodMs: integer(0),
    dependsOn: listOf(name),
    mode: oneOf('replicated', 'global'),
    replicas: integer(0),
    resources: shape({
      limits: object({ required: {}, optional: { cpus: amount, memoryBytes: amount } }),
      reservations: shape({ cpus: amount, memoryBytes: amount }),
    }),
    placement: object({
      required: { constraints: listOf(string) },
      optional: { maxReplicasPerNode: integer(0), preferences: listOf(string) },
    }),
    restartPolicy: shape({
      condition: oneOf('none', 'on-failure', 'any'),
      delayMs: integer(0),
      maxAttempts: integer(0),
      windowMs: integer(0),
    }),
    update: updatePolicy,
    rollback: updatePolicy,
  },
  optional: {
    pull: oneOf('always', 'missing', 'never'),
    forceUpdate: integer(1),
    atMostOnce: boolean,
    networks: listOf(string),
    routes: listOf(shape({ host: string, path: string, port: integer(1), stripPrefix: boolean })),
    autoscale: checkAutoscalePolicy,
    command: listOf(string),
    entrypoint: listOf(string),
    healthcheck: shape({
      test: listOf(string),
      intervalMs: integer(0),
      timeoutMs: integer(0),
      retries: integer(0),
      startPeriodMs: integer(0),
    }),
    namedVolumes: listOf(
      object({
        required: { name: string, pinned: boolean },
        optional: { driver: string, driverOpts: mapOf(string) },
      }),
    ),
    secrets: listOf(checkFileRef),
    configs: listOf(checkFileRef),
    container: object({
      required: {},
      optional: {
        user: string,
        workingDir: string,
        hostname: string,
        domainname: string,
        init: boolean,
        readOnly: boolean,
        tmpfs: listOf(string),
        // -1: unlimited.
        ulimits: mapOf(shape({ soft: integer(-1), hard: integer(-1) })),
        capAdd: listOf(string),
        capDrop: listOf(string),
        stopSignal: string,
        sysctls: mapOf(string),
        shmSizeBytes: integer(0),
        extraHosts: listOf(string),
        securityOpt: listOf(string),
        tty: boolean,
        stdinOpen: boolean,
        groupAdd: listOf(string),
        pidsLimit: integer(-1),
        oomScoreAdj: integer(-1000),
        platform: string,
        logging: object({ required: { options: mapOf(string) }, optional: { driver: string } }),
      },
    }),
    readiness: object({
      required: {
        kind: oneOf('http', 'tcp'),
        port: integer(1),
        intervalMs: integer(1),
        timeoutMs: integer(1),
        failureThreshold: integer(1),
        successThreshold: integer(1),
        startPeriodMs: integer(0),
      },
      optional: { path: string },
    }),
  },
};

/**
 * What an autoscaled service lacks: replicas to count (not global), and for a CPU or memory
 * target, the reservation or limit its percentage is of.
 */
export function autoscaleMisfit(
  service: ServiceDefinition,
): { key: 'autoscale' | 'cpu' | 'memory'; message: string } | undefined {
  const { autoscale, resources } = service;
  if (!autoscale) return undefined;
  if (service.mode === 'global')
    return {
      key: 'autoscale',
      message: 'a global service runs one task per node: it cannot autoscale (make it replicated)',
    };
  const { reservations, limits } = resources;
  const bases = {
    cpu: { has: reservations.cpus > 0 || (limits.cpus ?? 0) > 0, name: 'CPU', key: 'cpus' },
    memory: {
      has: reservations.memoryBytes > 0 || (limits.memoryBytes ?? 0) > 0,
      name: 'memory',
      key: 'memory',
    },
  };
  for (const metric of ['cpu', 'memory'] as const) {
    const base = bases[metric];
    if (autoscale.targets[metric] !== undefined && !base.has)
      return {
        key: metric,
        message: `is a percentage of the ${base.name} reservation or limit, and the service has neither: set deploy.resources.reservations.${base.key} (or limits.${base.key})`,
      };
  }
  return undefined;
}

/** A shape check, then the autoscale policy against the rest of the service. */
const withAutoscaleFit =
  (shape: Check): Check =>
  (value, path) => {
    const problem = shape(value, path);
    if (problem) return problem;
    const misfit = autoscaleMisfit(value as ServiceDefinition);
    if (!misfit) return undefined;
    return misfit.key === 'autoscale'
      ? `${path}.autoscale: ${misfit.message}`
      : `${path}.autoscale.targets.${misfit.key} ${misfit.message}`;
  };

/** A service as declared: what a deploy request carries, and a record's `previous`. */
export const checkDefinition: Check = withAutoscaleFit(object(definitionFields));

/** services/<stack>.<name> */
export const checkService: Check = withAutoscaleFit(
  object({
    required: { ...definitionFields.required, version: integer(1), updatedAt: string },
    optional: {
      ...definitionFields.optional,
      previous: checkDefinition,
      previousVersion: integer(1),
      rollingBack: boolean,
      restores: integer(1),
      rollout: object({
        required: {
          state: oneOf('updating', 'completed', 'paused', 'rolled-back'),
          startedAt: string,
        },
        optional: { readyAt: string, message: string },
      }),
    },
  }),
);

/**
 * The definition a task runs: its own version's. A task of the version before the last update
 * (being replaced) runs that one; a task of an older version than that runs nothing, the leader
 * replaces it.
 */
export function definitionFor(task: TaskRecord, service: ServiceRecord): ServiceRecord | undefined {
  if (task.serviceVersion === service.version || task.serviceVersion === service.restores)
    return service;
  // The definition before the update alone: what it did not set (a probe, routes) it did not have.
  if (
    service.previous &&
    service.previousVersion !== undefined &&
    task.serviceVersion === service.previousVersion
  )
    return { ...service.previous, version: service.previousVersion, updatedAt: service.updatedAt };
  return undefined;
}
