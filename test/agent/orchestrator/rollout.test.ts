import test from 'ava';
import { type ClusterView, orchestrate } from '../../../agent/orchestrator/plan.js';
import { READY_DEADLINE_MS } from '../../../agent/orchestrator/rollout.js';
import { replacementOrder, type ServiceRecord } from '../../../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../../../mesh/api/tasks.js';
import type { Write } from '../../../mesh/state/cluster-state.js';
import { clusterView, serviceRecord, taskRecord, taskStatus } from '../../helpers/records.js';

const NOW = 1_000_000;
const startFirst = { ...serviceRecord().update, order: 'start-first' as const, monitorMs: 1000 };

/** s.web at version 2 (3 replicas, start-first, rolling back on failure), updated from version 1. */
function updated(overrides: Partial<ServiceRecord> = {}): ServiceRecord {
  return serviceRecord({
    replicas: 3,
    version: 2,
    image: 'img:2',
    previous: { ...serviceRecord({ replicas: 3 }), image: 'img:1' },
    previousVersion: 1,
    update: { ...startFirst, failureAction: 'rollback' },
    rollback: startFirst,
    rollout: { state: 'updating', startedAt: new Date(NOW - 10_000).toISOString() },
    ...overrides,
  });
}

const old = [taskRecord(1, 1, 'n1'), taskRecord(2, 1, 'n2'), taskRecord(3, 1, 'n1')];

function view(
  service: ServiceRecord,
  tasks: TaskRecord[],
  statuses: Record<string, Partial<TaskStatus> & Pick<TaskStatus, 'state'>> = {},
): ClusterView {
  const known = new Map<string, TaskStatus>();
  for (const task of tasks) known.set(task.id, taskStatus('running', task.nodeId ?? 'n1'));
  for (const [id, status] of Object.entries(statuses))
    known.set(id, { ...taskStatus(status.state), ...status });
  const view = clusterView([service], tasks, { statuses: known });
  // The service record stored at version 7: its writes are conditional on that.
  return { ...view, services: [{ id: 's.web', version: 7, value: service }] };
}

let counter = 0;
const plan = (v: ClusterView, now = NOW): Write[] =>
  orchestrate(v, now, { rescheduleAfterMs: 2000 }, (id, slot) => `${id}.${slot}.v2n${counter++}`);
const tasksOf = (writes: Write[], desired: TaskRecord['desired']) =>
  writes.flatMap((w) =>
    w.op === 'put' && w.kind === 'tasks' && (w.value as TaskRecord).desired === desired
      ? [w.value as TaskRecord]
      : [],
  );
const serviceIn = (writes: Write[]): ServiceRecord | undefined =>
  (writes.find((w) => w.kind === 'services' && w.op === 'put') as { value: ServiceRecord })?.value;

test('start-first: the replacement starts while the task it replaces keeps running', (t) => {
  const writes = plan(view(updated(), old));
  t.deepEqual(
    tasksOf(writes, 'running').map((task) => [task.slot, task.serviceVersion]),
    [[1, 2]],
  );
  t.deepEqual(tasksOf(writes, 'shutdown'), [], 'nothing stops before its successor is ready');
});

test('start-first: the replaced task stops once its successor is ready, not before', (t) => {
  const fresh = taskRecord(1, 2, 'n2');
  const tasks = [fresh, ...old];
  const notReady = plan(view(updated(), tasks, { [fresh.id]: { state: 'running', ready: false } }));
  t.deepEqual(tasksOf(notReady, 'shutdown'), []);
  t.deepEqual(tasksOf(notReady, 'running'), [], 'parallelism 1: the next waits too');
  const ready = plan(view(updated(), tasks));
  t.deepEqual(
    tasksOf(ready, 'shutdown').map((task) => task.id),
    [old[0]?.id],
  );
  t.deepEqual(
    tasksOf(ready, 'running').map((task) => task.slot),
    [2],
    'and the next slot starts its replacement',
  );
});

test('stop-first: the replaced task stops in the same step its successor is created', (t) => {
  const writes = plan(view(updated({ update: serviceRecord().update }), old));
  t.deepEqual(
    tasksOf(writes, 'shutdown').map((task) => task.id),
    [old[0]?.id],
  );
  t.is(tasksOf(writes, 'running').length, 1);
});

test('a task that cannot run twice is replaced stop-first whatever the order', (t) => {
  t.is(replacementOrder(updated()), 'start-first');
  const hostPort = updated({
    ports: [{ target: 80, protocol: 'tcp', published: 80, mode: 'host' }],
  });
  t.is(replacementOrder(hostPort), 'stop-first');
  const pinned = { name: 's_data', pinned: true };
  t.is(replacementOrder(updated({ namedVolumes: [pinned] })), 'stop-first');
  t.is(
    replacementOrder(updated({ namedVolumes: [{ ...pinned, pinned: false }] })),
    'start-first',
    'a scratch volume may be used twice',
  );
  t.is(replacementOrder(updated({ volumes: ['/srv/site:/www:ro'] })), 'start-first');
  t.is(replacementOrder(updated({ atMostOnce: true })), 'stop-first');
});

test('start-first: a successor that found no room lets its predecessor stop first', (t) => {
  const pending = { ...taskRecord(1, 2, 'n1'), nodeId: null, reason: 'insufficient memory' };
  const writes = plan(view(updated(), [pending, ...old], { [pending.id]: { state: 'starting' } }));
  t.true(tasksOf(writes, 'shutdown').some((task) => task.id === old[0]?.id));
});

test('a new task that never becomes ready rolls the service back, keeping the old tasks', (t) => {
  const fresh = taskRecord(1, 2, 'n2');
  const tasks = [fresh, ...old];
  const never = { state: 'running', ready: false, neverReady: true, probe: 'GET /ready: 503' };
  const [write] = plan(view(updated(), tasks, { [fresh.id]: never as TaskStatus }));
  const back = (write as { value: ServiceRecord }).value;
  t.like(back, { version: 3, image: 'img:1', rollingBack: true, restores: 1 });
  t.regex(back.rollout?.message ?? '', /never became ready \(GET \/ready: 503\)/);
  // The tasks of version 1 run version 3's definition: they are recorded as of it, not replaced.
  const adopted = plan(view(back, tasks, { [fresh.id]: never as TaskStatus }));
  t.deepEqual(
    adopted.map((w) => [w.id, (w as { value: TaskRecord }).value.serviceVersion]),
    old.map((task) => [task.id, 3]),
  );
  const relabeled = old.map((task) => ({ ...task, serviceVersion: 3 }));
  const next = plan(view(back, [fresh, ...relabeled], { [fresh.id]: never as TaskStatus }));
  t.deepEqual(
    tasksOf(next, 'shutdown').map((task) => task.id),
    [fresh.id],
    'only the task of the failed version goes',
  );
  t.deepEqual(tasksOf(next, 'running'), [], 'no old task is restarted or replaced');
});

test('a crash-looping new task counts as failed; under max_failure_ratio the rollout goes on', (t) => {
  const fresh = taskRecord(1, 2, 'n2');
  const restarting = { [fresh.id]: { state: 'restarting', restarts: 1, reason: 'exit 1' } };
  const strict = plan(view(updated(), [fresh, ...old], restarting as never));
  t.regex(serviceIn(strict)?.rollout?.message ?? '', /restarted 1 time\(s\): exit 1/);
  const tolerant = updated({ update: { ...startFirst, maxFailureRatio: 0.5 } });
  const writes = plan(view(tolerant, [fresh, ...old], restarting as never));
  t.is(serviceIn(writes), undefined, 'one failure in three is within 0.5');
});

test('the rollout completes once every new task is ready and the monitor period passed', (t) => {
  const fresh = [taskRecord(1, 2, 'n1'), taskRecord(2, 2, 'n2'), taskRecord(3, 2, 'n1')];
  const first = serviceIn(plan(view(updated(), fresh))) as ServiceRecord;
  t.like(first?.rollout, { state: 'updating', readyAt: new Date(NOW).toISOString() });
  t.deepEqual(plan(view(first, fresh), NOW + 500), [], 'still monitoring');
  const done = serviceIn(plan(view(first, fresh), NOW + 1000));
  t.like(done?.rollout, { state: 'completed' });
  const rolledBack: ServiceRecord = { ...first, rollingBack: true };
  t.like(serviceIn(plan(view(rolledBack, fresh), NOW + 1000))?.rollout, { state: 'rolled-back' });
});

test('a failure during the monitor period still counts', (t) => {
  const fresh = [taskRecord(1, 2, 'n1'), taskRecord(2, 2, 'n2'), taskRecord(3, 2, 'n1')];
  const monitoring = updated({
    rollout: { state: 'updating', startedAt: '', readyAt: new Date(NOW).toISOString() },
  });
  const crashed = { [fresh[1]?.id as string]: { state: 'restarting', restarts: 1 } };
  t.like(serviceIn(plan(view(monitoring, fresh, crashed as never), NOW + 500)), {
    rollingBack: true,
  });
});

test('update_config.delay: the next replacement waits that long after the last became ready', (t) => {
  const fresh = taskRecord(1, 2, 'n2');
  const delayed = updated({ update: { ...startFirst, delayMs: 5000 } });
  const since = new Date(NOW - 1000).toISOString();
  const writes = plan(view(delayed, [fresh, ...old], { [fresh.id]: { state: 'running', since } }));
  t.deepEqual(tasksOf(writes, 'running'), []);
  const later = plan(
    view(delayed, [fresh, ...old], { [fresh.id]: { state: 'running', since } }),
    NOW + 4000,
  );
  t.deepEqual(
    tasksOf(later, 'running').map((task) => task.slot),
    [2],
  );
});

test('a new task not ready within the deadline counts as failed, saying what held it', (t) => {
  const createdAt = new Date(NOW - READY_DEADLINE_MS).toISOString();
  const pending = { ...taskRecord(1, 2, 'n1'), nodeId: null, createdAt, reason: 'no node fits' };
  const writes = plan(view(updated(), [pending, ...old], { [pending.id]: { state: 'starting' } }));
  t.regex(
    serviceIn(writes)?.rollout?.message ?? '',
    /not ready within 300s of its creation \(starting: no node fits\)/,
  );
  const young = { ...pending, createdAt: new Date(NOW - 1000).toISOString() };
  t.is(
    serviceIn(plan(view(updated(), [young, ...old], { [young.id]: { state: 'starting' } }))),
    undefined,
  );
});
