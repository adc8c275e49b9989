/** Stored objects of the data model for the pure cores' unit tests: valid, small, overridable. */
import type { ClusterView } from '../../agent/orchestrator/plan.js';
import type { NodeInfo, ServiceSpec } from '../../agent/scheduler/model.js';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import type { ServiceRecord } from '../../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../../mesh/api/tasks.js';

const POLICY: ServiceRecord['update'] = {
  parallelism: 1,
  delayMs: 0,
  order: 'stop-first',
  failureAction: 'pause',
  monitorMs: 0,
  maxFailureRatio: 0,
};

/** A one-replica Docker service `s.web` at version 1: restart always, no delay, stop-first updates. */
export function serviceRecord(overrides: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    stack: 's',
    name: 'web',
    runtime: 'docker',
    image: 'img',
    env: {},
    ports: [],
    expose: [],
    volumes: [],
    labels: {},
    serviceLabels: {},
    stopGracePeriodMs: 1000,
    dependsOn: [],
    mode: 'replicated',
    replicas: 1,
    resources: { limits: {}, reservations: { cpus: 0, memoryBytes: 0 } },
    placement: { constraints: [] },
    restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 },
    update: POLICY,
    rollback: POLICY,
    version: 1,
    updatedAt: '',
    ...overrides,
  };
}

/** Task `s.web.<slot>.v<version>` of service s.web, to run on the node. */
export function taskRecord(slot: number, version: number, nodeId: string): TaskRecord {
  return {
    id: `s.web.${slot}.v${version}`,
    serviceId: 's.web',
    slot,
    serviceVersion: version,
    nodeId,
    desired: 'running',
    reservations: { cpus: 0, memoryBytes: 0 },
  };
}

/** A ready, active node with room for anything and both runtimes. */
export function nodeRecord(id: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return {
    address: `${id}:7946`,
    hostname: id,
    status: 'ready',
    since: 0,
    labels: {},
    capacity: { cpus: 4, memoryBytes: 2 ** 32 },
    version: '0',
    serial: '',
    runtimes: ['docker', 'process'],
    availability: 'active',
    userLabels: {},
    ...overrides,
  };
}

/** A task's status; a running one is ready. */
export function taskStatus(state: TaskStatus['state'], nodeId = 'n1'): TaskStatus {
  const status: TaskStatus = {
    nodeId,
    state,
    restarts: 0,
    since: new Date(0).toISOString(),
    ports: [],
  };
  if (state === 'running') status.ready = true;
  return status;
}

/**
 * What the leader plans from, for the orchestrator's tests: the given services and tasks stored
 * (versions 1.. and 10..), nodes n1 and n2 ready with n1 the voter, nothing else unless given.
 */
export function clusterView(
  services: ServiceRecord[],
  tasks: TaskRecord[],
  overrides: Partial<ClusterView> = {},
): ClusterView {
  return {
    services: services.map((value, i) => ({ id: `s.${value.name}`, version: i + 1, value })),
    nodes: ['n1', 'n2'].map((id) => ({ id, version: 1, value: nodeRecord(id) })),
    tasks: tasks.map((value, i) => ({ id: value.id, version: i + 10, value })),
    statuses: new Map(),
    voters: ['n1'],
    settings: undefined,
    addresses: new Map(),
    volumes: new Map(),
    ...overrides,
  };
}

const GiB = 2 ** 30;

/** A ready, active node of the scheduler's model: 2 CPUs, 4 GiB, both runtimes. */
export function nodeInfo(id: string, overrides: Partial<NodeInfo> = {}): NodeInfo {
  return {
    id,
    hostname: `host-${id}`,
    labels: {},
    runtimes: ['docker', 'process'],
    capacity: { cpus: 2, memoryBytes: 4 * GiB },
    role: 'worker',
    platform: { os: 'linux', arch: 'x86_64' },
    status: 'ready',
    availability: 'active',
    ...overrides,
  };
}

/** A one-replica Docker service of the scheduler's model, no reservation, no constraint. */
export function serviceSpec(id: string, overrides: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    id,
    mode: 'replicated',
    runtime: 'docker',
    replicas: 1,
    reservations: { cpus: 0, memoryBytes: 0 },
    constraints: [],
    version: 1,
    ...overrides,
  };
}
