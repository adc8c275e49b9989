import test from 'ava';
import {
  LOOK_AGAIN_MS,
  type NodeView,
  type Observed,
  reconcile,
  runningVerdict,
} from '../../../agent/reconciler/plan.js';
import type { TaskObservation } from '../../../agent/runtime/runtime.js';
import type { ReadinessProbe, RuntimeKind, ServiceRecord } from '../../../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../../../mesh/api/tasks.js';
import { serviceRecord, taskRecord, taskStatus } from '../../helpers/records.js';

const NOW = 1_000_000;
const web = serviceRecord();
const task = taskRecord(1, 1, 'n1');

function seen(
  taskId: string,
  state: TaskObservation['state'],
  health?: TaskObservation['health'],
  runtime: RuntimeKind = 'docker',
): [string, Observed] {
  return [taskId, { runtime, seen: { taskId, state, ports: [], health } }];
}

/** This node (n1) with the given tasks and containers; everything else quiet. */
function view(overrides: Partial<NodeView> = {}): NodeView {
  return {
    tasks: [task],
    services: new Map([['s.web', web]]),
    statuses: new Map(),
    observed: new Map(),
    probed: new Set(),
    lookedAt: new Map([[task.id, NOW]]),
    busy: new Set(),
    restartAt: new Map(),
    lastExit: new Map(),
    runningServices: new Set(),
    missingRuntimes: new Map(),
    cutOff: false,
    now: NOW,
    ...overrides,
  };
}

const statuses = (entries: Record<string, TaskStatus['state']>) =>
  new Map(Object.entries(entries).map(([id, state]) => [id, taskStatus(state)]));

test('an assigned task without a container is started', (t) => {
  t.deepEqual(reconcile(view()), [{ type: 'start', task, service: web }]);
});

test('a task that ended for good (failed or complete) is not started again', (t) => {
  t.deepEqual(reconcile(view({ statuses: statuses({ [task.id]: 'failed' }) })), []);
  t.deepEqual(reconcile(view({ statuses: statuses({ [task.id]: 'complete' }) })), []);
});

test('a running, healthy task that the cluster knows runs is left alone', (t) => {
  const actions = reconcile(
    view({
      observed: new Map([seen(task.id, 'running', { status: 'healthy' })]),
      statuses: statuses({ [task.id]: 'running' }),
    }),
  );
  t.deepEqual(actions, []);
});

test('a running container is looked at again every LOOK_AGAIN_MS: its listening ports follow', (t) => {
  const running = {
    observed: new Map([seen(task.id, 'running')]),
    statuses: statuses({ [task.id]: 'running' }),
  };
  const look = [{ type: 'inspect', taskId: task.id, runtime: 'docker' }];
  t.deepEqual(reconcile(view({ ...running, now: NOW + LOOK_AGAIN_MS - 1 })), []);
  t.deepEqual(reconcile(view({ ...running, now: NOW + LOOK_AGAIN_MS })), look);
  t.deepEqual(reconcile(view({ ...running, lookedAt: new Map() })), look, 'never looked at');
  // A process shares the node's network: its ports are the ones it was given.
  const process = {
    ...running,
    observed: new Map([seen(task.id, 'running', undefined, 'process')]),
  };
  t.deepEqual(reconcile(view({ ...process, now: NOW + LOOK_AGAIN_MS })), []);
});

test('a container of a task no longer assigned here is removed, from the runtime that runs it', (t) => {
  const stray = 'other.web.1.abc';
  const actions = reconcile(
    view({ tasks: [], observed: new Map([seen(stray, 'running', undefined, 'process')]) }),
  );
  t.deepEqual(actions, [
    { type: 'remove', taskId: stray, runtime: 'process', because: 'unassigned' },
  ]);
});

test('a task with an operation in flight is left to it', (t) => {
  const stray = 'other.web.1.abc';
  const actions = reconcile(
    view({ observed: new Map([seen(stray, 'running')]), busy: new Set([task.id, stray]) }),
  );
  t.deepEqual(actions, []);
});

test('a task told to shut down is stopped where it runs, or reported shut down once', (t) => {
  const stopping: TaskRecord = { ...task, desired: 'shutdown', reason: 'scaled down' };
  t.deepEqual(
    reconcile(view({ tasks: [stopping], observed: new Map([seen(task.id, 'running')]) })),
    [{ type: 'shutdown', task: stopping, runtime: 'docker' }],
  );
  t.deepEqual(reconcile(view({ tasks: [stopping] })), [
    { type: 'report', taskId: task.id, status: { state: 'shutdown', reason: 'scaled down' } },
  ]);
  t.deepEqual(
    reconcile(view({ tasks: [stopping], statuses: statuses({ [task.id]: 'shutdown' }) })),
    [],
    'already reported',
  );
});

test('a task shut down and stopped is kept as it is: history, until the leader removes it', (t) => {
  const done: TaskRecord = { ...task, desired: 'shutdown', reason: 'replaced' };
  const kept = view({
    tasks: [done],
    observed: new Map([seen(task.id, 'exited')]),
    statuses: statuses({ [task.id]: 'shutdown' }),
  });
  t.deepEqual(reconcile(kept), [], 'no second stop');
  t.deepEqual(
    reconcile({ ...kept, tasks: [] }),
    [{ type: 'remove', taskId: task.id, runtime: 'docker', because: 'unassigned' }],
    'removed with its record',
  );
});

test('a task whose container ended unseen, came up, or turned unhealthy is looked at again', (t) => {
  const ended = reconcile(
    view({
      observed: new Map([seen(task.id, 'exited')]),
      statuses: statuses({ [task.id]: 'running' }),
    }),
  );
  t.deepEqual(ended, [{ type: 'inspect', taskId: task.id, runtime: 'docker' }]);
  const up = reconcile(
    view({
      observed: new Map([seen(task.id, 'running')]),
      statuses: statuses({ [task.id]: 'starting' }),
    }),
  );
  t.deepEqual(up, [{ type: 'inspect', taskId: task.id, runtime: 'docker' }]);
  const unhealthy = reconcile(
    view({
      observed: new Map([seen(task.id, 'running', { status: 'unhealthy' })]),
      statuses: statuses({ [task.id]: 'running' }),
    }),
  );
  t.deepEqual(unhealthy, [{ type: 'inspect', taskId: task.id, runtime: 'docker' }]);
  const over = reconcile(
    view({
      observed: new Map([seen(task.id, 'exited')]),
      statuses: statuses({ [task.id]: 'failed' }),
    }),
  );
  t.deepEqual(over, [], 'an ended container of a failed task stays for its logs');
});

test('a task waits while a service it depends on runs nowhere, naming it, then starts', (t) => {
  const api: ServiceRecord = { ...web, dependsOn: ['db', 'cache'] };
  const services = new Map([['s.web', api]]);
  t.deepEqual(reconcile(view({ services, runningServices: new Set(['s.cache']) })), [
    {
      type: 'report',
      taskId: task.id,
      status: { state: 'waiting', reason: 'waiting for db to run (depends_on)' },
    },
  ]);
  t.deepEqual(reconcile(view({ services, runningServices: new Set(['s.db', 's.cache']) })), [
    { type: 'start', task, service: api },
  ]);
});

test('a task whose runtime this node lacks fails with the reason', (t) => {
  const missingRuntimes = new Map([['docker', 'no Docker Engine reachable on node n1'] as const]);
  t.deepEqual(reconcile(view({ missingRuntimes })), [
    {
      type: 'report',
      taskId: task.id,
      status: { state: 'failed', reason: 'no Docker Engine reachable on node n1' },
    },
  ]);
});

test('a task of a service removed meanwhile is not started', (t) => {
  t.deepEqual(reconcile(view({ services: new Map() })), []);
});

test('a restart waits out its delay, then removes what is left so the next round starts it', (t) => {
  const restarting = {
    observed: new Map([seen(task.id, 'exited')]),
    statuses: statuses({ [task.id]: 'restarting' }),
  };
  t.deepEqual(reconcile(view({ ...restarting, restartAt: new Map([[task.id, NOW + 1]]) })), []);
  t.deepEqual(reconcile(view({ ...restarting, restartAt: new Map([[task.id, NOW]]) })), [
    { type: 'restart', taskId: task.id, runtime: 'docker' },
  ]);
  t.deepEqual(
    reconcile(view({ statuses: restarting.statuses, restartAt: new Map([[task.id, NOW - 5]]) })),
    [{ type: 'restart', taskId: task.id, runtime: undefined }],
    'its container already gone',
  );
  t.deepEqual(reconcile(view({ statuses: restarting.statuses })), [
    { type: 'start', task, service: web },
  ]);
});

test('cut off from the leader, at-most-once tasks stop and do not start; others run on', (t) => {
  const once: ServiceRecord = { ...web, atMostOnce: true };
  const running = {
    observed: new Map([seen(task.id, 'running')]),
    statuses: statuses({ [task.id]: 'running' }),
  };
  const cutOff = reconcile(
    view({ ...running, services: new Map([['s.web', once]]), cutOff: true }),
  );
  t.is(cutOff.length, 1);
  t.deepEqual(cutOff[0], {
    type: 'remove',
    taskId: task.id,
    runtime: 'docker',
    because: 'cut-off',
  });
  t.deepEqual(
    reconcile(view({ services: new Map([['s.web', once]]), cutOff: true })),
    [],
    'not started',
  );
  t.deepEqual(reconcile(view({ ...running, cutOff: true })), [], 'a service without it runs on');
  t.deepEqual(
    reconcile(view({ services: new Map([['s.web', once]]) })),
    [{ type: 'start', task, service: once }],
    'heard again: started',
  );
});

test("a task starts with its own version's definition: the previous one while it is replaced, none older", (t) => {
  const updated: ServiceRecord = {
    ...web,
    image: 'img:3',
    version: 3,
    previous: { ...web, image: 'img:2' },
    previousVersion: 2,
  };
  const startOf = (version: number) =>
    reconcile(
      view({
        tasks: [{ ...task, serviceVersion: version }],
        services: new Map([['s.web', updated]]),
      }),
    ).find((a) => a.type === 'start');
  t.is(startOf(3)?.type === 'start' && startOf(3)?.service.image, 'img:3');
  const previous = startOf(2);
  t.is(previous?.type === 'start' && previous.service.image, 'img:2', 'being replaced');
  t.is(startOf(1), undefined, 'forgotten: the leader replaces it');
});

/** What a running container looks like to runningVerdict. */
function running(overrides: Partial<TaskObservation> = {}): TaskObservation {
  return { taskId: task.id, state: 'running', ports: [], ...overrides };
}

test('running, seen: a failing health check ends it; a starting one waits, saying so', (t) => {
  t.deepEqual(
    runningVerdict(
      running({ health: { status: 'unhealthy', detail: '3 failures in a row' } }),
      web,
    ),
    { type: 'ended', reason: 'health check failing (3 failures in a row)' },
  );
  t.like(runningVerdict(running({ health: { status: 'starting' } }), web), {
    type: 'report',
    status: { state: 'starting', reason: 'waiting for its health check' },
    check: undefined,
  });
});

test('running, seen: ready at once when nothing is checked; else its ports or its probe decide', (t) => {
  const healthy = runningVerdict(
    running({ health: { status: 'healthy' }, address: '10.1.0.2' }),
    web,
  );
  t.like(healthy, { type: 'report', status: { state: 'running', ready: true }, check: undefined });
  const withPorts = serviceRecord({ expose: [8080] });
  const ports = runningVerdict(running({ address: '10.1.0.2' }), withPorts);
  t.like(ports, { check: { type: 'ports', address: '10.1.0.2', ports: [8080] } });
  t.false('ready' in (ports.type === 'report' ? ports.status : {}), 'not ready until they answer');
  const exposedOnly = runningVerdict(running({ address: '10.1.0.2', exposed: [5432] }), web);
  t.like(
    exposedOnly,
    { check: { type: 'ports', ports: [5432] } },
    "the image's ports, when the file names none",
  );
  const readiness: ReadinessProbe = {
    kind: 'http',
    path: '/ready',
    port: 8080,
    intervalMs: 1,
    timeoutMs: 1,
    failureThreshold: 1,
    successThreshold: 1,
    startPeriodMs: 0,
  };
  const probed = serviceRecord({ readiness });
  t.like(runningVerdict(running({ address: '10.1.0.2' }), probed), {
    check: { type: 'probe', target: { host: '10.1.0.2', port: 8080 } },
  });
  t.like(
    runningVerdict(
      running({ ports: [{ target: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 31000 }] }),
      probed,
    ),
    { check: { type: 'probe', target: { host: '127.0.0.1', port: 31000 } } },
    'a process task: where it published the port',
  );
  t.like(runningVerdict(running(), probed), { check: { type: 'unprobeable', port: 8080 } });
});

test('running, seen: a process task is ready once the host ports it was given accept connections', (t) => {
  // A process has no address of its own: before, it was ready as soon as it ran, listening or not,
  // and a rolling update stopped the replica it replaced before the new one took a connection.
  const withPorts = serviceRecord({ expose: [8080, 9090] });
  const given = running({
    ports: [
      { target: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 31000 },
      { target: 53, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 31001 },
      { target: 9090, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 31002 },
    ],
  });
  const verdict = runningVerdict(given, withPorts);
  t.like(verdict, { check: { type: 'ports', address: '127.0.0.1', ports: [31000, 31002] } });
  t.false(
    'ready' in (verdict.type === 'report' ? verdict.status : {}),
    'not ready until they answer',
  );
  t.like(
    runningVerdict(running(), withPorts),
    { status: { ready: true }, check: undefined },
    'no port was given to it: nothing to check',
  );
});

test('a task told to stop while it waited to start again ended failed, saying why', (t) => {
  const stopped = { ...task, desired: 'shutdown' as const, reason: 'a newer task holds its slot' };
  const restarting = {
    ...taskStatus('restarting', 'n1'),
    reason: 'no such image; restart 1/1 in 1s',
  };
  t.deepEqual(
    reconcile(
      view({
        tasks: [stopped],
        statuses: new Map([[task.id, restarting]]),
        lastExit: new Map([[task.id, 'no such image']]),
      }),
    ),
    [{ type: 'report', taskId: task.id, status: { state: 'failed', reason: 'no such image' } }],
  );
  t.deepEqual(
    reconcile(
      view({ tasks: [stopped], statuses: new Map([[task.id, taskStatus('running', 'n1')]]) }),
    ),
    [
      {
        type: 'report',
        taskId: task.id,
        status: { state: 'shutdown', reason: 'a newer task holds its slot' },
      },
    ],
    'one that was running was shut down',
  );
});
