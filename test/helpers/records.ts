/** Stored objects of the data model for the pure cores' unit tests: valid, small, overridable. */
import type { NodeRecord } from '../../mesh/api/nodes.js';
import type { ServiceRecord } from '../../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../../mesh/api/tasks.js';

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
    update: { parallelism: 1, delayMs: 0, order: 'stop-first', failureAction: 'pause' },
    rollback: { parallelism: 1, delayMs: 0, order: 'stop-first', failureAction: 'pause' },
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

export function taskStatus(state: TaskStatus['state'], nodeId = 'n1'): TaskStatus {
  return { nodeId, state, restarts: 0, since: new Date(0).toISOString(), ports: [] };
}
