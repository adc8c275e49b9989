import test from 'ava';
import type { NetworkSettings } from '../../mesh/api/network.js';
import type { ServiceRecord } from '../../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../../mesh/api/tasks.js';
import {
  publishedAddress,
  type ReplicaView,
  routingTable,
  type ServiceRoute,
} from '../../proxy/routing-table.js';
import { serviceRecord, taskRecord, taskStatus } from '../helpers/records.js';

const settings: NetworkSettings = { serviceRange: '10.77.0.0/24', bridgeRange: '10.78.0.0/16' };

function view(overrides: Partial<ReplicaView> = {}): ReplicaView {
  const web = serviceRecord({
    ports: [{ target: 80, protocol: 'tcp', published: 8080 }],
    replicas: 2,
  });
  const tasks = [taskRecord(1, 1, 'n1'), taskRecord(2, 1, 'n2')];
  const statuses = new Map<string, TaskStatus>(
    tasks.map((t, i) => [
      t.id,
      { ...taskStatus('running'), nodeId: t.nodeId as string, address: `10.78.0.${i + 2}` },
    ]),
  );
  return {
    settings,
    services: [web],
    addresses: new Map([['s.web', { address: '10.77.0.2' }]]),
    tasks,
    statuses,
    alive: new Set(['n1', 'n2']),
    ...overrides,
  };
}

const endpointsOf = (v: ReplicaView) => routingTable(v).services[0]?.endpoints.map((e) => e.taskId);

test('a service has its address, its ports, its stack network, and its running tasks as endpoints', (t) => {
  const table = routingTable(view());
  const [web] = table.services;
  t.is(web?.address, '10.77.0.2');
  t.deepEqual(web?.networks, ['s_default']);
  t.deepEqual(
    web?.ports.map((p) => p.target),
    [80],
  );
  t.deepEqual(
    web?.endpoints.map((e) => [e.taskId, e.nodeId, e.host, e.ports.get(80)]),
    [
      ['s.web.1.v1', 'n1', '10.78.0.2', 80],
      ['s.web.2.v1', 'n2', '10.78.0.3', 80],
    ],
  );
  t.is(table.byAddress.get('10.77.0.2'), web);
  t.is(table.byName.get('web.s'), web);
  t.deepEqual(
    table.ingress.map((i) => [i.port, i.target]),
    [[8080, 80]],
  );
  t.is(table.dnsAddress, '10.77.0.1');
});

test('a task that is not running, or waits for its health check, is no endpoint', (t) => {
  for (const state of ['starting', 'restarting', 'failed', 'complete'] as const) {
    const v = view();
    const statuses = new Map(v.statuses);
    statuses.set('s.web.1.v1', { ...(statuses.get('s.web.1.v1') as TaskStatus), state });
    t.deepEqual(endpointsOf({ ...v, statuses }), ['s.web.2.v1'], state);
  }
});

test('a running task its readiness probe has not passed is no endpoint', (t) => {
  const v = view();
  const statuses = new Map(v.statuses);
  const status = statuses.get('s.web.1.v1') as TaskStatus;
  statuses.set('s.web.1.v1', { ...status, ready: false, probe: 'GET /ready: 503' });
  t.deepEqual(endpointsOf({ ...v, statuses }), ['s.web.2.v1']);
});

test('a task told to shut down leaves the table at once, before it stops', (t) => {
  const v = view();
  const tasks = v.tasks.map((task) =>
    task.slot === 1 ? { ...task, desired: 'shutdown' as const } : task,
  );
  t.deepEqual(endpointsOf({ ...v, tasks }), ['s.web.2.v1']);
});

test('the tasks of a node membership holds dead route nowhere', (t) => {
  t.deepEqual(endpointsOf(view({ alive: new Set(['n2']) })), ['s.web.2.v1']);
});

test('a status from another node than the task is assigned to is not trusted', (t) => {
  const v = view();
  const moved: TaskRecord[] = v.tasks.map((task) =>
    task.slot === 1 ? { ...task, nodeId: 'n3' } : task,
  );
  t.deepEqual(endpointsOf({ ...v, tasks: moved, alive: new Set(['n1', 'n2', 'n3']) }), [
    's.web.2.v1',
  ]);
});

test('a process task is reached at the host ports its node gave it, TCP and UDP', (t) => {
  const v = view();
  const service: ServiceRecord = { ...(v.services[0] as ServiceRecord), runtime: 'process' };
  const statuses = new Map(v.statuses);
  statuses.set('s.web.1.v1', {
    ...taskStatus('running'),
    nodeId: 'n1',
    ports: [
      { target: 80, protocol: 'tcp', hostIp: '127.0.0.5', hostPort: 40_001 },
      { target: 53, protocol: 'udp', hostIp: '127.0.0.5', hostPort: 40_002 },
    ],
  });
  const [endpoint] =
    routingTable({ ...v, services: [service], statuses }).services[0]?.endpoints ?? [];
  t.deepEqual(
    [endpoint?.host, endpoint?.ports.get(80), endpoint?.udpPorts.get(53)],
    ['127.0.0.5', 40_001, 40_002],
  );
});

test('a published port claimed twice is reported as not routed; its TCP and UDP are two ports', (t) => {
  const web = serviceRecord({
    ports: [
      { target: 80, protocol: 'tcp', published: 8080 },
      { target: 53, protocol: 'udp', published: 53 },
    ],
  });
  const api = serviceRecord({
    name: 'api',
    ports: [
      { target: 81, protocol: 'tcp', published: 8080 },
      { target: 53, protocol: 'tcp', published: 53 },
    ],
  });
  const table = routingTable(view({ services: [web, api] }));
  t.deepEqual(table.notRouted, ['s.web: published port 8080/tcp is already published by s.api']);
  t.deepEqual(
    table.ingress.map((i) => `${i.port}/${i.protocol} ${i.service.id}`),
    ['8080/tcp s.api', '53/tcp s.api', '53/udp s.web'],
  );
});

test('UDP ports: the service address answers on the declared ones; each replica serves them', (t) => {
  const base = view({
    services: [
      serviceRecord({
        ports: [
          { target: 51820, protocol: 'udp', published: 51820 },
          { target: 53, protocol: 'udp' },
          { target: 53, protocol: 'tcp' },
        ],
      }),
    ],
  });
  const [web] = routingTable(base).services;
  t.deepEqual(web?.udpPorts, [53, 51820]);
  t.deepEqual(
    web?.ports.map((p) => p.target),
    [53],
    'TCP ports apart',
  );
  t.deepEqual(
    [...(web?.endpoints[0]?.udpPorts ?? [])],
    [
      [53, 53],
      [51820, 51820],
    ],
  );
});

/** Two replicas of `db`, declaring no port, whose statuses report what they expose and listen on. */
function discovered(reports: Array<Pick<TaskStatus, 'exposed' | 'listening'>>): ReplicaView {
  const base = view();
  const statuses = new Map(
    [...base.statuses].map(([id, status], i) => [id, { ...status, ...reports[i] }]),
  );
  return { ...base, services: [serviceRecord({ replicas: 2 })], statuses };
}

test('a service address answers on its image ports and the ports seen listening, each named', (t) => {
  const [db] = routingTable(
    discovered([
      { exposed: [5432], listening: [5432, 9187] },
      { exposed: [5432], listening: [5432] },
    ]),
  ).services;
  t.deepEqual(
    db?.ports.map((p) => [p.target, p.source]),
    [
      [5432, 'image'],
      [9187, 'listening'],
    ],
  );
  // Only the replica seen listening on 9187 takes connections to it.
  t.deepEqual(
    db?.endpoints.map((e) => [e.taskId, [...e.ports.keys()].sort()]),
    [
      ['s.web.1.v1', [5432, 9187]],
      ['s.web.2.v1', [5432]],
    ],
  );
});

test('a declared port stays declared when the image exposes it too; every replica serves it', (t) => {
  const base = discovered([{ exposed: [80, 443] }, {}]);
  const [web] = routingTable({
    ...base,
    services: [serviceRecord({ expose: [80], replicas: 2 })],
  }).services;
  t.deepEqual(
    web?.ports.map((p) => [p.target, p.source]),
    [
      [80, 'declared'],
      [443, 'image'],
    ],
  );
  t.deepEqual(
    web?.endpoints.map((e) => e.ports.has(80)),
    [true, true],
  );
});

test('a replica restarting keeps its discovered ports on the address; a shut-down one does not', (t) => {
  const base = discovered([{ listening: [6379] }, {}]);
  const [first] = base.tasks;
  const restarting = new Map(base.statuses);
  restarting.set(first?.id as string, {
    ...(base.statuses.get(first?.id as string) as TaskStatus),
    state: 'restarting',
  });
  const portsOf = (v: ReplicaView) => routingTable(v).services[0]?.ports.map((p) => p.target);
  t.deepEqual(portsOf({ ...base, statuses: restarting }), [6379]);
  const tasks = base.tasks.map((task, i) =>
    i === 0 ? { ...task, desired: 'shutdown' as const } : task,
  );
  t.deepEqual(portsOf({ ...base, tasks }), []);
});

test("a published port's host IP says where each node listens for it", (t) => {
  const ingress = (hostIp?: string) => ({
    port: 3306,
    protocol: 'tcp' as const,
    target: 3306,
    service: routingTable(view()).services[0] as ServiceRoute,
    ...(hostIp ? { hostIp } : {}),
  });
  t.is(publishedAddress(ingress(), '10.1.0.1'), '10.1.0.1', 'every node, on its address');
  t.is(publishedAddress(ingress('127.0.0.1'), '10.1.0.1'), '127.0.0.1', "each node's loopback");
  t.is(publishedAddress(ingress('10.1.0.1'), '10.1.0.1'), '10.1.0.1', 'the node it is');
  t.is(publishedAddress(ingress('10.1.0.2'), '10.1.0.1'), undefined, 'not on another node');
});
