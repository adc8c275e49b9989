import test from 'ava';
import {
  ConstraintError,
  parseConstraint,
  satisfies,
} from '../../../agent/scheduler/constraints.js';
import type { NodeInfo, Plan, ServiceSpec, Task } from '../../../agent/scheduler/model.js';
import { pendingCause, RESTART_GRACE_MS, schedule } from '../../../agent/scheduler/scheduler.js';
import { seededRandom } from '../../../mesh/random.js';
import { nodeInfo, serviceSpec } from '../../helpers/records.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

const node = nodeInfo;
const service = serviceSpec;

let counter = 0;
const ids = () => `t${++counter}`;

/** Applies a plan the way the orchestrator would: stopped tasks go, created ones appear. */
function apply(tasks: Task[], plan: Plan): Task[] {
  const stopped = new Set(plan.stop.map((s) => s.taskId));
  return [...tasks.filter((t) => !stopped.has(t.id)), ...plan.create];
}

function converge(services: ServiceSpec[], nodes: NodeInfo[], tasks: Task[] = [], now = 0): Task[] {
  let current = tasks;
  for (let round = 0; round < 5; round++) {
    const plan = schedule(services, nodes, current, now, undefined, () => ids());
    const placed = plan.create.filter((t) => t.nodeId !== null);
    if (plan.stop.length === 0 && placed.length === 0) return current;
    current = apply(current, plan);
  }
  throw new Error('no fixpoint');
}

function countBy(tasks: Task[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const task of tasks)
    counts[task.nodeId ?? 'pending'] = (counts[task.nodeId ?? 'pending'] ?? 0) + 1;
  return counts;
}

test('replicas spread across nodes, ties to the lower node ID', (t) => {
  const tasks = converge([service('shop.web', { replicas: 4 })], [node('a'), node('b'), node('c')]);
  t.deepEqual(countBy(tasks), { a: 2, b: 1, c: 1 });
});

test('reservations are respected; a task that fits nowhere is pending with a reason', (t) => {
  const nodes = [
    node('a', { capacity: { cpus: 2, memoryBytes: 1 * GiB } }),
    node('b', { capacity: { cpus: 2, memoryBytes: 1 * GiB } }),
  ];
  const web = service('shop.web', {
    replicas: 5,
    reservations: { cpus: 0.1, memoryBytes: 512 * MiB },
  });
  const plan = schedule([web], nodes, [], 0, undefined, () => ids());
  t.deepEqual(countBy(plan.create), { a: 2, b: 2, pending: 1 });
  t.is(
    plan.create.find((x) => x.nodeId === null)?.reason,
    'insufficient memory on all 2 eligible nodes (needs 512 MiB)',
  );
});

test('constraints on labels, hostname and ID; unsatisfiable ones say which', (t) => {
  const nodes = [
    node('a', { labels: { zone: 'a' } }),
    node('b', { labels: { zone: 'b' } }),
    node('c', { labels: { zone: 'b' } }),
  ];
  const db = service('shop.db', {
    replicas: 2,
    constraints: ['node.labels.zone==b', 'node.hostname!=host-c'],
  });
  t.deepEqual(countBy(schedule([db], nodes, [], 0, undefined, ids).create), { b: 2 });
  const nowhere = service('shop.x', { constraints: ['node.labels.zone==c'] });
  t.is(
    schedule([nowhere], nodes, [], 0, undefined, ids).create[0]?.reason,
    'no node satisfies the constraints: node.labels.zone==c',
  );
  t.throws(() => parseConstraint('zone=b'), {
    instanceOf: ConstraintError,
    message: /not of the form/,
  });
  t.true(satisfies(nodes[0] as NodeInfo, ['node.id==a', 'node.labels.missing!=x']));
});

test("Swarm's role and platform constraints: managers are the voters", (t) => {
  const nodes = [
    node('a', { role: 'manager' }),
    node('b', { platform: { os: 'linux', arch: 'aarch64' } }),
    node('c', { platform: { os: 'windows', arch: 'x86_64' } }),
  ];
  const place = (constraints: string[]) =>
    countBy(
      schedule([service('s.x', { replicas: 2, constraints })], nodes, [], 0, undefined, ids).create,
    );
  t.deepEqual(place(['node.role==manager']), { a: 2 });
  t.deepEqual(place(['node.role == worker', 'node.platform.os==linux']), { b: 2 });
  t.deepEqual(place(['node.platform.arch==x86_64', 'node.platform.os!=windows']), { a: 2 });
  t.throws(() => parseConstraint('engine.labels.storage==ssd'), { message: /not of the form/ });
});

test('max_replicas_per_node caps each node', (t) => {
  const plan = schedule(
    [service('s.w', { replicas: 5, maxReplicasPerNode: 1 })],
    [node('a'), node('b'), node('c')],
    [],
    0,
    undefined,
    ids,
  );
  t.deepEqual(countBy(plan.create), { a: 1, b: 1, c: 1, pending: 2 });
  t.is(
    plan.create.find((x) => x.nodeId === null)?.reason,
    'max_replicas_per_node 1 reached on all 3 eligible nodes',
  );
});

test('drained nodes get nothing and their tasks move', (t) => {
  const nodes = [node('a'), node('b'), node('c')];
  const web = service('shop.web', { replicas: 3 });
  const before = converge([web], nodes);
  const drained = nodes.map((n) => (n.id === 'b' ? { ...n, availability: 'drain' as const } : n));
  const after = converge([web], drained, before);
  t.is(after.length, 3);
  t.false(after.some((x) => x.nodeId === 'b'));
});

test('a down node keeps its tasks through the grace period, then they move', (t) => {
  const nodes = [node('a'), node('b')];
  const web = service('shop.web', { replicas: 2 });
  const before = converge([web], nodes);
  const down = nodes.map((n) =>
    n.id === 'a' ? { ...n, status: 'down' as const, downSince: 10_000 } : n,
  );
  const early = schedule([web], down, before, 11_000, { rescheduleAfterMs: 3000 }, ids);
  t.deepEqual(early, { create: [], stop: [] }, 'a blip is not a failure');
  const late = schedule([web], down, before, 13_000, { rescheduleAfterMs: 3000 }, ids);
  t.deepEqual(
    late.stop.map((s) => s.reason),
    ['node a is down'],
  );
  t.deepEqual(countBy(late.create), { b: 1 });
});

test('a node that said it restarts keeps its tasks through the restart grace, then they move', (t) => {
  const nodes = [node('a'), node('b')];
  const web = service('shop.web', { replicas: 2 });
  const before = converge([web], nodes);
  const restarting = nodes.map((n) =>
    n.id === 'a' ? { ...n, status: 'down' as const, downSince: 10_000, restarting: true } : n,
  );
  const options = { rescheduleAfterMs: 3000 };
  const past = (ms: number) => schedule([web], restarting, before, 10_000 + ms, options, ids);
  t.deepEqual(past(RESTART_GRACE_MS - 1), { create: [], stop: [] }, 'a restart is not a failure');
  const late = past(RESTART_GRACE_MS);
  t.deepEqual(
    late.stop.map((s) => s.reason),
    [`node a did not come back within ${RESTART_GRACE_MS / 1000} s of its restart`],
  );
  t.deepEqual(countBy(late.create), { b: 1 });
});

test('scaling down stops the highest slots; removing a service stops all its tasks', (t) => {
  const nodes = [node('a'), node('b')];
  const tasks = converge([service('s.w', { replicas: 4 })], nodes);
  const down = schedule([service('s.w', { replicas: 2 })], nodes, tasks, 0, undefined, ids);
  t.deepEqual(down.stop.map((s) => tasks.find((x) => x.id === s.taskId)?.slot).sort(), [3, 4]);
  const gone = schedule([], nodes, tasks, 0, undefined, ids);
  t.is(gone.stop.length, 4);
  t.true(gone.stop.every((s) => s.reason === 'its service was removed'));
});

test('global mode: one task per eligible node, following nodes as they come and go', (t) => {
  const agent = service('ops.agent', { mode: 'global', constraints: ['node.labels.monitor!=no'] });
  const nodes = [node('a'), node('b'), node('c', { labels: { monitor: 'no' } })];
  const tasks = converge([agent], nodes);
  t.deepEqual(countBy(tasks), { a: 1, b: 1 });
  const grown = converge([agent], [...nodes, node('d')], tasks);
  t.deepEqual(countBy(grown), { a: 1, b: 1, d: 1 });
});

test('a new service version replaces its tasks', (t) => {
  const nodes = [node('a')];
  const tasks = converge([service('s.w', { replicas: 2 })], nodes);
  const plan = schedule(
    [service('s.w', { replicas: 2, version: 2 })],
    nodes,
    tasks,
    0,
    undefined,
    ids,
  );
  t.is(plan.stop.length, 2);
  t.true(plan.create.every((x) => x.serviceVersion === 2));
});

test('random clusters: capacity, constraints and limits always hold, and the plan settles', (t) => {
  for (let seed = 1; seed <= 300; seed++) {
    const random = seededRandom(seed);
    const nodes = Array.from({ length: 1 + random.int(6) }, (_, i) =>
      node(`n${i}`, {
        labels: { zone: random.next() < 0.5 ? 'a' : 'b' },
        capacity: { cpus: 1 + random.int(4), memoryBytes: (1 + random.int(4)) * GiB },
        status: random.next() < 0.15 ? 'down' : 'ready',
        downSince: 0,
        availability: random.next() < 0.15 ? 'drain' : 'active',
      }),
    );
    const services = Array.from({ length: 1 + random.int(4) }, (_, i) =>
      service(`s.svc${i}`, {
        mode: random.next() < 0.2 ? 'global' : 'replicated',
        replicas: random.int(8),
        reservations: { cpus: random.int(3) * 0.5, memoryBytes: random.int(3) * 512 * MiB },
        constraints: random.next() < 0.3 ? ['node.labels.zone==b'] : [],
        maxReplicasPerNode: random.next() < 0.3 ? 1 + random.int(2) : undefined,
      }),
    );
    const tasks = converge(services, nodes, [], 60_000).filter((x) => x.nodeId !== null);
    const again = schedule(services, nodes, tasks, 60_000, undefined, ids);
    t.deepEqual(again.stop, [], `seed ${seed}: settled plans stop nothing`);
    for (const n of nodes) {
      const here = tasks.filter((x) => x.nodeId === n.id);
      if (n.status !== 'ready' || n.availability !== 'active')
        t.is(here.length, 0, `seed ${seed}: ${n.id} unusable`);
      t.true(
        here.reduce((s, x) => s + x.reservations.memoryBytes, 0) <= n.capacity.memoryBytes,
        `seed ${seed}: memory`,
      );
      t.true(
        here.reduce((s, x) => s + x.reservations.cpus, 0) <= n.capacity.cpus + 1e-9,
        `seed ${seed}: cpu`,
      );
      for (const svc of services) {
        const mine = here.filter((x) => x.serviceId === svc.id);
        if (svc.maxReplicasPerNode !== undefined)
          t.true(mine.length <= svc.maxReplicasPerNode, `seed ${seed}: per node`);
        if (mine.length > 0) t.true(satisfies(n, svc.constraints), `seed ${seed}: constraints`);
      }
    }
    for (const svc of services.filter((s) => s.mode === 'replicated')) {
      const slots = tasks.filter((x) => x.serviceId === svc.id).map((x) => x.slot);
      t.is(new Set(slots).size, slots.length, `seed ${seed}: one task per slot`);
      t.true(
        slots.every((slot) => slot >= 1 && slot <= svc.replicas),
        `seed ${seed}: slots in range`,
      );
    }
  }
});

test('tasks go only to nodes offering their runtime; with none, they wait and say why', (t) => {
  const nodes = [node('a', { runtimes: ['process'] }), node('b')];
  const placed = schedule([service('web', { replicas: 2 })], nodes, [], 0, undefined, ids);
  t.deepEqual(
    placed.create.map((task) => task.nodeId),
    ['b', 'b'],
  );
  const none = schedule([service('web')], [nodes[0] as NodeInfo], [], 0, undefined, ids);
  t.is(none.create[0]?.nodeId, null);
  t.is(
    none.create[0]?.reason,
    'no ready node has a Docker Engine (each agent looks for one every few seconds)',
  );
  const processes = schedule(
    [service('job', { runtime: 'process' })],
    [nodes[0] as NodeInfo],
    [],
    0,
    undefined,
    ids,
  );
  t.is(processes.create[0]?.nodeId, 'a');
});

test('a replica on a node that no longer satisfies the constraints moves', (t) => {
  const web = service('web', { replicas: 1, constraints: ['node.labels.zone==a'] });
  const before = [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'a' } })];
  const placed = schedule([web], before, [], 0, undefined, ids);
  const [task] = placed.create;
  t.is(task?.nodeId, 'n1');
  const relabelled = [node('n1', { labels: { zone: 'b' } }), before[1] as NodeInfo];
  const plan = schedule([web], relabelled, placed.create, 0, undefined, ids);
  t.deepEqual(plan.stop, [
    { taskId: task?.id as string, reason: 'node n1 no longer satisfies node.labels.zone==a' },
  ]);
  t.is(plan.create[0]?.nodeId, 'n2');
});

test('placement preferences spread tasks across label values first, then across nodes', (t) => {
  const nodes = [
    node('n1', { labels: { zone: 'a' } }),
    node('n2', { labels: { zone: 'a' } }),
    node('n3', { labels: { zone: 'b' } }),
    node('n4'),
  ];
  const spread = converge([service('s', { replicas: 6, spread: ['node.labels.zone'] })], nodes);
  // Three groups (a, b, and nodes without the label): two tasks each.
  t.deepEqual(countBy(spread), { n1: 1, n2: 1, n3: 2, n4: 2 });
  const plain = converge([service('p', { replicas: 6 })], nodes);
  t.deepEqual(countBy(plain), { n1: 2, n2: 2, n3: 1, n4: 1 });
});

test('a replacement stays on the node of the task it replaces: a rollout keeps the spread', (t) => {
  const nodes = [node('a'), node('b'), node('c')];
  const old = (slot: number, nodeId: string, version: number): Task => ({
    id: `old${slot}`,
    serviceId: 's.w',
    slot,
    serviceVersion: version,
    nodeId,
    desired: 'running',
    reservations: { cpus: 0, memoryBytes: 0 },
  });
  // One slot at a time, as a rollout with parallelism 1 asks: the others count as current.
  let tasks = [old(1, 'c', 1), old(2, 'a', 2), old(3, 'b', 2)];
  const plan = schedule(
    [service('s.w', { replicas: 3, version: 2 })],
    nodes,
    tasks,
    0,
    undefined,
    ids,
  );
  t.deepEqual(
    plan.create.map((x) => [x.slot, x.nodeId]),
    [[1, 'c']],
  );
  // Five versions in a row, each replacing every slot: one task per node throughout.
  tasks = converge([service('s.w', { replicas: 3, version: 2 })], nodes, tasks);
  for (let version = 3; version <= 7; version++) {
    tasks = converge([service('s.w', { replicas: 3, version })], nodes, tasks);
    t.deepEqual(countBy(tasks), { a: 1, b: 1, c: 1 }, `version ${version}`);
  }
});

test('every reason a task waits for a node has its cause, for the pending-tasks metric', (t) => {
  const one = [node('a')];
  const pendingOn = (nodes: NodeInfo[], overrides: Partial<ServiceSpec>) => {
    const reason = schedule([service('s.x', overrides)], nodes, [], 0, undefined, ids).create.find(
      (task) => task.nodeId === null,
    )?.reason;
    return pendingCause(reason ?? '(placed)');
  };
  t.deepEqual(
    [
      pendingOn([node('a', { status: 'down' })], { pinned: { nodeId: 'a', volume: 'db' } }),
      pendingOn([node('a', { status: 'down' })], {}),
      pendingOn([node('a', { runtimes: ['process'] })], {}),
      pendingOn(one, { constraints: ['node.labels.zone==c'] }),
      pendingOn(one, { replicas: 2, maxReplicasPerNode: 1 }),
      pendingOn(one, { reservations: { cpus: 0, memoryBytes: 8 * GiB } }),
      pendingOn(one, { reservations: { cpus: 4, memoryBytes: 0 } }),
    ],
    ['volume', 'no-node', 'runtime', 'constraints', 'max-per-node', 'memory', 'cpu'],
  );
  t.is(pendingCause('something new'), 'other');
});
