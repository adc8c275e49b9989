/**
 * The reconciler's shell over a fake runtime: what it asks a runtime to do, and what it reports,
 * as the plan (tested on its own) decides. No engine, no timers of a real container.
 */
import test from 'ava';
import type { Lagging } from '../../../agent/cluster/routing-views.js';
import { Reconciler, type ReconcilerOptions } from '../../../agent/reconciler/reconciler.js';
import type {
  LogPage,
  Runtime,
  TaskObservation,
  TaskSpec,
  TaskUsage,
} from '../../../agent/runtime/runtime.js';
import type { Runtimes } from '../../../agent/runtime/runtimes.js';
import type { TaskRecord } from '../../../mesh/api/tasks.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import { captureLogs } from '../../helpers/logs.js';
import { eventually } from '../../helpers/poll.js';
import { serviceRecord, taskRecord } from '../../helpers/records.js';

/** A runtime that runs nothing: it remembers what it was asked and says so when inspected. */
class FakeRuntime implements Runtime {
  readonly started: TaskSpec[] = [];
  readonly stopped: string[] = [];
  /** How often a task was looked at. */
  inspections = 0;
  private readonly tasks = new Map<string, TaskObservation>();
  private listener: ((taskId: string) => void) | undefined;

  async start(spec: TaskSpec): Promise<TaskObservation> {
    this.started.push(spec);
    const seen: TaskObservation = { taskId: spec.taskId, state: 'running', ports: [] };
    this.tasks.set(spec.taskId, seen);
    return seen;
  }

  async stop(taskId: string): Promise<void> {
    this.stopped.push(taskId);
    const seen = this.tasks.get(taskId);
    if (seen) this.tasks.set(taskId, { ...seen, state: 'exited', exitCode: 0 });
  }

  async remove(taskId: string): Promise<void> {
    this.tasks.delete(taskId);
  }

  async inspect(taskId: string): Promise<TaskObservation | undefined> {
    this.inspections++;
    return this.tasks.get(taskId);
  }

  async list(): Promise<TaskObservation[]> {
    return [...this.tasks.values()];
  }

  async logs(): Promise<LogPage> {
    return { lines: [], cursor: '' };
  }

  async usage(): Promise<Map<string, TaskUsage>> {
    return new Map();
  }

  async onChange(listener: (taskId: string) => void): Promise<void> {
    this.listener = listener;
  }

  async close(): Promise<void> {}

  /** An engine event about the task: the reconciler looks at it again. */
  touch(taskId: string): void {
    this.listener?.(taskId);
  }

  /** The task's process ends on its own, as an engine's event says. */
  exit(taskId: string, exitCode: number): void {
    const seen = this.tasks.get(taskId);
    if (seen)
      this.tasks.set(taskId, {
        ...seen,
        state: 'exited',
        exitCode,
        reason: `exited with ${exitCode}`,
      });
    this.listener?.(taskId);
  }
}

/** Node n1 running one task of s.web (restarted at once when it ends), on a fake docker. */
function setUp(
  t: { teardown: (f: () => void) => void },
  { routesAsOf }: Partial<Pick<ReconcilerOptions, 'routesAsOf'>> = {},
) {
  const state = new ClusterState();
  let index = 0;
  const apply = (command: unknown) => state.apply(++index, command);
  const web = serviceRecord({ image: 'registry.example.com/team/web:2' });
  const task: TaskRecord = taskRecord(1, 1, 'n1');
  apply({
    op: 'batch',
    writes: [
      { op: 'put', kind: 'services', id: 's.web', value: web },
      { op: 'put', kind: 'tasks', id: task.id, value: task },
    ],
  });
  const runtime = new FakeRuntime();
  const runtimes = {
    onAdded: () => undefined,
    entries: () => [['docker', runtime]],
    get: (kind: string) => (kind === 'docker' ? runtime : undefined),
    missing: new Map(),
  } as unknown as Runtimes;
  const logs = captureLogs('n1');
  const reconciler = new Reconciler({
    nodeId: 'n1',
    state,
    propose: async (command) => apply(command),
    runtimes,
    routesAsOf: routesAsOf ?? (async () => []),
    caughtUp: async () => undefined,
    leaderSilenceMs: () => 0,
    cutOffAfterMs: 60_000,
    registryAuth: async () => ({
      username: 'team',
      password: 'p',
      serveraddress: 'registry.example.com',
    }),
    log: logs.log,
  });
  t.teardown(() => reconciler.stop());
  const status = () => state.get('statuses', task.id)?.value;
  return { state, apply, runtime, reconciler, task, status, logs };
}

test('an assigned task is started with its spec and its registry login, and reported running', async (t) => {
  const { runtime, reconciler, task, status } = setUp(t);
  await reconciler.start();
  await eventually(() => status()?.state === 'running', { what: 'the task reported running' });
  t.is(runtime.started.length, 1);
  t.like(runtime.started[0], {
    taskId: task.id,
    image: 'registry.example.com/team/web:2',
    registryAuth: { username: 'team', serveraddress: 'registry.example.com' },
  });
  t.true(status()?.ready, 'nothing to check: ready at once');
});

test('a task that ends on its own is restarted per its policy, and the restart counted', async (t) => {
  const { runtime, reconciler, task, status } = setUp(t);
  await reconciler.start();
  await eventually(() => status()?.state === 'running', { what: 'the task running' });
  runtime.exit(task.id, 3);
  await eventually(() => runtime.started.length === 2 && status()?.state === 'running', {
    what: 'the task started again',
  });
  t.is(status()?.restarts, 1);
  t.is(status()?.exitCode, 3, 'how it last ended is kept through the restart');
});

/** Starts the reconciler, lets the task run, then tells it to stop: the index of that write. */
async function runThenStop(node: ReturnType<typeof setUp>): Promise<number> {
  const { state, apply, reconciler, task, status } = node;
  await reconciler.start();
  await eventually(() => status()?.state === 'running', { what: 'the task running' });
  apply({
    op: 'put',
    kind: 'tasks',
    id: task.id,
    value: { ...task, desired: 'shutdown', reason: 'scaled down' },
  });
  return state.appliedIndex;
}

test('a task told to stop is stopped and kept as history, reported shut down with why', async (t) => {
  const node = setUp(t);
  const { runtime, task, status } = node;
  await runThenStop(node);
  await eventually(() => status()?.state === 'shutdown', { what: 'the task shut down' });
  t.deepEqual(runtime.stopped, [task.id], 'stopped, not removed: its logs stay readable');
  t.like(status(), { reason: 'scaled down', kept: true });
});

test('a task told to stop is signalled only once every node has taken it out of its routing', async (t) => {
  // One node answers late (busy, or paused): past the moment given to requests in flight.
  const order: string[] = [];
  const asked: Array<{ index: number; maxWaitMs: number }> = [];
  const lateNode: Lagging = { node: 'n3', reason: 'its routes are as of state index 1, not 2' };
  const node = setUp(t, {
    routesAsOf: (index, maxWaitMs) => {
      asked.push({ index, maxWaitMs });
      return new Promise((resolve) =>
        setTimeout(() => {
          order.push('every node answered');
          resolve([lateNode]);
        }, 1500),
      );
    },
  });
  const { runtime, task, status, logs } = node;
  const stop = runtime.stop.bind(runtime);
  runtime.stop = async (taskId) => {
    order.push('stopped');
    return stop(taskId);
  };
  const stoppedAt = await runThenStop(node);
  await eventually(() => status()?.state === 'shutdown', { what: 'the task shut down' });
  t.deepEqual(order, ['every node answered', 'stopped'], 'the signal waits for the last node');
  t.is(asked.length, 1);
  t.true((asked[0]?.index ?? 0) >= stoppedAt, 'asked as of the write that stopped it');
  t.is(asked[0]?.maxWaitMs, 500, 'half the stop grace period (1 s) at most');
  const warned = logs.lines.find(
    (l) => l.msg === 'stopping a task that some nodes may still route to',
  );
  t.like(warned, { task: task.id, lagging: [lateNode] }, 'a node that did not say so is named');
});

test('a task being replaced keeps its own version’s readiness: the update’s probe is not put on it', async (t) => {
  const { state, apply, runtime, reconciler, task, status } = setUp(t);
  await reconciler.start();
  await eventually(() => status()?.ready === true, { what: 'the task ready' });
  // Version 2 adds a probe on a port nothing listens on; the running task is still version 1.
  const web = state.get('services', 's.web')?.value;
  if (!web) throw new Error('no service');
  const { version: _version, updatedAt: _updatedAt, ...before } = web;
  apply({
    op: 'put',
    kind: 'services',
    id: 's.web',
    value: {
      ...web,
      version: 2,
      previous: before,
      previousVersion: 1,
      readiness: {
        kind: 'tcp',
        port: 9,
        intervalMs: 50,
        timeoutMs: 50,
        failureThreshold: 1,
        successThreshold: 1,
        startPeriodMs: 0,
      },
    },
  });
  // Whatever makes the reconciler look at the task again (an engine event) judges it by version 1:
  // with version 2's probe it would be reported not ready at once (nothing to probe here).
  const looked = runtime.inspections;
  runtime.touch(task.id);
  await eventually(() => runtime.inspections > looked, { what: 'the task looked at again' });
  // What it found is reported (and applied) within a few turns of the event loop.
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
  t.like(status(), { state: 'running', ready: true });
});
