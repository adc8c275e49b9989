import test from 'ava';
import { type ClusterView, orchestrate } from '../../../agent/orchestrator/plan.js';
import type { NodeRecord } from '../../../mesh/api/nodes.js';
import type { ServiceRecord } from '../../../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../../../mesh/api/tasks.js';
import type { Write } from '../../../mesh/state/cluster-state.js';
import {
  clusterView,
  nodeRecord,
  serviceRecord,
  taskRecord,
  taskStatus,
} from '../../helpers/records.js';

const NOW = 1_000_000;
const options = { rescheduleAfterMs: 2000 };

function node(id: string, status: NodeRecord['status'] = 'ready', since = 0) {
  return { id, version: 1, value: nodeRecord(id, { status, since }) };
}

function service(replicas: number, version: number, parallelism = 1): ServiceRecord {
  const update = { ...serviceRecord().update, parallelism };
  return serviceRecord({ replicas, version, update, rollback: update });
}

const task = taskRecord;

function view(
  services: ServiceRecord[],
  tasks: TaskRecord[],
  nodes = [node('n1'), node('n2')],
  statuses: Record<string, TaskStatus['state']> = {},
): ClusterView {
  return clusterView(services, tasks, {
    nodes,
    statuses: new Map(Object.entries(statuses).map(([id, state]) => [id, taskStatus(state)])),
  });
}

let counter = 0;
const plan = (v: ClusterView, now = NOW): Write[] =>
  orchestrate(v, now, options, (id, slot) => `${id}.${slot}.new${counter++}`);
const created = (writes: Write[]) =>
  writes.filter((w) => w.op === 'put' && (w.value as TaskRecord).desired === 'running');
const stopped = (writes: Write[]) =>
  writes.filter((w) => w.op === 'put' && (w.value as TaskRecord).desired === 'shutdown');

test('replicas are created and spread over the ready nodes', (t) => {
  const writes = plan(view([service(2, 1)], []));
  t.deepEqual(
    created(writes).map((w) => (w.op === 'put' ? (w.value as TaskRecord).nodeId : '')),
    ['n1', 'n2'],
  );
  t.true(
    writes.every((w) => w.op !== 'put' || w.ifVersion === 0),
    'creates are conditional',
  );
});

test('an update replaces update_config.parallelism tasks at a time, waiting for them to run', (t) => {
  const old = [task(1, 1, 'n1'), task(2, 1, 'n2'), task(3, 1, 'n1')];
  const first = plan(view([service(3, 2)], old));
  t.is(stopped(first).length, 1);
  t.is(created(first).length, 1);
  // The new task of slot 1 is not running yet: nothing more is replaced.
  const fresh = task(1, 2, 'n2');
  const waiting = plan(view([service(3, 2)], [fresh, old[1] as TaskRecord, old[2] as TaskRecord]));
  t.is(stopped(waiting).length, 0);
  const running = plan(
    view([service(3, 2)], [fresh, old[1] as TaskRecord, old[2] as TaskRecord], undefined, {
      [fresh.id]: 'running',
    }),
  );
  t.is(stopped(running).length, 1, 'the next one goes once the first runs');
  // failure_action pause: a failed task of the new version pauses the rollout.
  const updating = { ...service(3, 2), rollout: { state: 'updating', startedAt: '' } } as const;
  const rest = [fresh, old[1] as TaskRecord, old[2] as TaskRecord];
  const [pause] = plan(view([updating], rest, undefined, { [fresh.id]: 'failed' }));
  const paused = (pause as { value: ServiceRecord }).value;
  t.like(paused.rollout, { state: 'paused', message: `task ${fresh.id} failed` });
  t.is(stopped(plan(view([paused], rest, undefined, { [fresh.id]: 'failed' }))).length, 0);
  t.is(stopped(plan(view([service(3, 2, 0)], old))).length, 3, 'parallelism 0: all at once');
});

test('a node suspect past the grace loses its tasks; within it, keeps them', (t) => {
  const tasks = [task(1, 1, 'n1'), task(2, 1, 'n2')];
  const within = plan(
    view([service(2, 1)], tasks, [node('n1'), node('n2', 'suspect', NOW - 1000)]),
  );
  t.is(stopped(within).length, 0);
  const past = plan(view([service(2, 1)], tasks, [node('n1'), node('n2', 'suspect', NOW - 2000)]));
  t.deepEqual(
    stopped(past).map((w) => (w.op === 'put' ? (w.value as TaskRecord).reason : '')),
    ['node n2 is down'],
  );
  t.is(created(past).length, 1);
});

test('a stopped task of a removed service is forgotten once its node confirms, or at once when its node is down', (t) => {
  const stopping = { ...task(1, 1, 'n1'), desired: 'shutdown' as const };
  const unconfirmed = plan(view([], [stopping]));
  t.false(unconfirmed.some((w) => w.op === 'delete'));
  const confirmed = plan(view([], [stopping], undefined, { [stopping.id]: 'shutdown' }));
  t.deepEqual(
    confirmed.map((w) => `${w.op} ${w.kind}/${w.id}`),
    [`delete tasks/${stopping.id}`, `delete statuses/${stopping.id}`],
  );
  const down = plan(view([], [stopping], [node('n1', 'down', 0), node('n2')]));
  t.deepEqual(
    down.map((w) => `${w.op} ${w.kind}/${w.id}`),
    [`delete tasks/${stopping.id}`],
  );
});

test('finished tasks stay as history, the last five of each slot, newest kept', (t) => {
  const finished = Array.from({ length: 7 }, (_, i) => ({
    ...task(1, i + 1, 'n1'),
    desired: 'shutdown' as const,
    createdAt: new Date(NOW - (7 - i) * 1000).toISOString(),
  }));
  const current = task(1, 8, 'n1');
  const states = Object.fromEntries(finished.map((f) => [f.id, 'shutdown' as const]));
  const writes = plan(
    view([service(1, 8)], [...finished, current], undefined, {
      ...states,
      [current.id]: 'running',
    }),
  );
  t.deepEqual(
    writes.filter((w) => w.op === 'delete').map((w) => `${w.kind}/${w.id}`),
    ['tasks/s.web.1.v2', 'statuses/s.web.1.v2', 'tasks/s.web.1.v1', 'statuses/s.web.1.v1'],
    'the two oldest go, with their statuses',
  );
  // One still stopping is not history yet; one on a node that is down goes at once.
  const stopping = plan(view([service(1, 8)], [...finished.slice(0, 1), current]));
  t.false(stopping.some((w) => w.op === 'delete' && w.kind === 'tasks'));
  const down = plan(
    view([service(1, 8)], finished.slice(0, 1), [node('n1', 'down', 0), node('n2')], states),
  );
  t.true(down.some((w) => w.op === 'delete' && w.id === 's.web.1.v1'));
});

test('failure_action rollback: a failed task of the new version brings the previous one back', (t) => {
  const updated: ServiceRecord = {
    ...service(2, 2),
    image: 'img:2',
    previous: { ...service(2, 1), image: 'img:1' },
    previousVersion: 1,
    update: { ...service(2, 2).update, failureAction: 'rollback' },
    rollout: { state: 'updating', startedAt: '' },
  };
  const fresh = task(1, 2, 'n1');
  const writes = plan(
    view([updated], [fresh, task(2, 1, 'n2')], undefined, { [fresh.id]: 'failed' }),
  );
  t.is(writes.length, 1, 'only the rollback: tasks are planned from the state that holds it');
  const [write] = writes;
  t.like(write, { op: 'put', kind: 'services', id: 's.web', ifVersion: 1 });
  const back = (write as { value: ServiceRecord }).value;
  t.like(back, { image: 'img:1', version: 3, rollingBack: true, replicas: 2, restores: 1 });
  t.is(back.previous?.image, 'img:2');
  t.regex(back.rollout?.message ?? '', /version 2 rolled back: task s\.web\.1\.v2 failed/);
  // Once rolling back, a failure does not roll back again: the rollback pauses.
  const again = plan(
    view([back], [{ ...fresh, serviceVersion: 3 }], undefined, { [fresh.id]: 'failed' }),
  );
  t.like((again[0] as { value: ServiceRecord }).value, {
    version: 3,
    rollout: { state: 'paused' },
  });
});

test('a pinning volume is placed with its first task; the service then runs there or waits', (t) => {
  const stateful = serviceRecord({ namedVolumes: [{ name: 's_data', pinned: true }] });
  const first = plan(view([stateful], [], [node('n2'), node('n1')]));
  const placed = created(first)[0] as { value: TaskRecord } | undefined;
  t.like(
    first.find((w) => w.kind === 'volumes'),
    { op: 'put', id: 's_data', value: { name: 's_data', nodeId: placed?.value.nodeId } },
  );
  const pinnedTo = (nodeId: string, nodes = [node('n1'), node('n2', 'down', 0)]) => ({
    ...view([stateful], [], nodes),
    volumes: new Map([['s_data', { name: 's_data', nodeId, pinnedAt: '' }]]),
  });
  const onN2 = created(plan(pinnedTo('n2')))[0] as { value: TaskRecord } | undefined;
  t.like(onN2?.value, {
    nodeId: null,
    reason:
      'its volume s_data is on node n2, which is down: it waits there rather than start elsewhere on an empty volume',
  });
  const onN1 = created(plan(pinnedTo('n1')))[0] as { value: TaskRecord } | undefined;
  t.is(onN1?.value.nodeId, 'n1');
});

test('a task carries its service’s stop grace period, for when the service is removed before it stops', (t) => {
  const writes = plan(view([{ ...service(1, 1), stopGracePeriodMs: 1500 }], []));
  t.deepEqual(
    created(writes).map((w) => (w.op === 'put' ? (w.value as TaskRecord).stopGracePeriodMs : 0)),
    [1500],
  );
});
