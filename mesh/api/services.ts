/**
 * Services: what `mesh deploy` writes, one record per service of a stack, and the pure helpers on
 * them. Every node holds all of them in its replica.
 */

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
import { name } from './stacks.js';

/** Where a service's tasks run: Docker containers, or plain processes (x-mesh runtime: process). */
export type RuntimeKind = 'docker' | 'process';

export interface PortSpec {
  target: number;
  protocol: 'tcp' | 'udp';
  /** The port the user asked to publish: on every node through the routing mesh, or with mode host on the task's node only. */
  published?: number;
  /** Compose's `mode: host`: the engine publishes the port on the task's node; absent: ingress (the routing mesh). */
  mode?: 'host';
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
  runtime: RuntimeKind;
  image: string;
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
  /**
   * x-mesh at_most_once: never two copies of a task, even across a partition: a node cut off from
   * the leader stops its tasks before the leader could have started replacements.
   */
  atMostOnce?: boolean;
  /** x-mesh routes: hostnames and path prefixes served by the HTTP ingress on every node. */
  routes?: HttpRouteSpec[];
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
    rollingBack: _rollingBack,
    ...definition
  } = record;
  return definition;
}

/** The service as it was before its last update, as a new version that rolls out per rollback_config. */
export function rolledBack(service: ServiceRecord, updatedAt: string): ServiceRecord {
  const { previous } = service;
  if (!previous) throw new Error(`service ${serviceId(service)} has no earlier version`);
  return {
    ...previous,
    // Scaling since then stays: a rollback restores the task template, not the replica count.
    replicas: service.replicas,
    version: service.version + 1,
    updatedAt,
    previous: definitionOf(service),
    rollingBack: true,
  };
}

/** An object whose fields are all required. */
const shape = (fields: Record<string, Check>) => object({ required: fields });
const updatePolicy = shape({
  parallelism: integer(0),
  delayMs: integer(0),
  order: oneOf('stop-first', 'start-first'),
  failureAction: oneOf('pause', 'continue', 'rollback'),
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
        optional: { published: integer(1), mode: oneOf('host') },
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
      optional: { maxReplicasPerNode: integer(0) },
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
    atMostOnce: boolean,
    networks: listOf(string),
    routes: listOf(shape({ host: string, path: string, port: integer(1), stripPrefix: boolean })),
    command: listOf(string),
    entrypoint: listOf(string),
    healthcheck: shape({
      test: listOf(string),
      intervalMs: integer(0),
      timeoutMs: integer(0),
      retries: integer(0),
      startPeriodMs: integer(0),
    }),
  },
};

/** A service as declared: what a deploy request carries, and a record's `previous`. */
const checkDefinition: Check = object(definitionFields);

/** services/<stack>.<name> */
export const checkService: Check = object({
  required: { ...definitionFields.required, version: integer(1), updatedAt: string },
  optional: { ...definitionFields.optional, previous: checkDefinition, rollingBack: boolean },
});
