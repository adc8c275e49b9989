/** What each write to the replicated state tells `mesh events`, one behaviour a test. */
import test from 'ava';
import { eventsOfChange } from '../../../agent/events/events.js';
import type { Change } from '../../../mesh/state/cluster-state.js';

const change = (kind: Change['kind'], id: string, before: unknown, after: unknown): Change => ({
  kind,
  id,
  object: after === undefined ? undefined : { id, version: 2, value: after },
  ...(before !== undefined && { previous: { id, version: 1, value: before } }),
});

const status = (state: string, more: object = {}) => ({
  nodeId: 'n1',
  state,
  restarts: 0,
  since: '2026-12-06T00:00:00Z',
  ports: [],
  ...more,
});

test('a task that changes state is told once, with its service, node and why', (t) => {
  t.deepEqual(
    eventsOfChange(
      change('statuses', 's.web.1.ab', status('running'), status('failed', { exitCode: 3 })),
    ),
    [
      {
        type: 'task',
        action: 'failed',
        subject: 's.web.1.ab',
        service: 's.web',
        node: 'n1',
        reason: 'exit 3',
      },
    ],
  );
  t.deepEqual(
    eventsOfChange(change('statuses', 's.web.1.ab', status('running'), status('running'))),
    [],
  );
});

test('a task becoming ready, or not, is told beside its state', (t) => {
  const [ready] = eventsOfChange(
    change(
      'statuses',
      's.web.1.ab',
      status('running', { ready: false }),
      status('running', { ready: true }),
    ),
  );
  t.like(ready, { action: 'ready', subject: 's.web.1.ab' });
});

test('the leader placing a task, leaving it pending, and stopping it say so', (t) => {
  const task = { serviceId: 's.web', slot: 1, serviceVersion: 1, nodeId: 'n1', desired: 'running' };
  t.like(eventsOfChange(change('tasks', 't1', undefined, task))[0], {
    action: 'assigned',
    node: 'n1',
  });
  t.like(
    eventsOfChange(
      change('tasks', 't1', undefined, { ...task, nodeId: null, reason: 'no node is ready' }),
    )[0],
    {
      action: 'pending',
      reason: 'no node is ready',
    },
  );
  t.like(
    eventsOfChange(
      change('tasks', 't1', task, { ...task, desired: 'shutdown', reason: 'node n1 is down' }),
    )[0],
    { action: 'shutdown', reason: 'node n1 is down' },
  );
});

test('a rollout that pauses says why; a new version is an update', (t) => {
  const v1 = { version: 1, rollout: { state: 'completed', startedAt: 'x' } };
  const v2 = { version: 2, rollout: { state: 'updating', startedAt: 'y' } };
  t.deepEqual(
    eventsOfChange(change('services', 's.web', v1, v2)).map((e) => e.action),
    ['updated', 'rollout-updating'],
  );
  const paused = {
    ...v2,
    rollout: { state: 'paused', startedAt: 'y', message: 'task t never became ready' },
  };
  t.deepEqual(eventsOfChange(change('services', 's.web', v2, paused)), [
    {
      type: 'service',
      action: 'rollout-paused',
      subject: 's.web',
      reason: 'task t never became ready',
    },
  ]);
});

test('a node changing status, drained, or renewed is told', (t) => {
  const node = { status: 'ready', availability: 'active', serial: 'a1', address: '10.0.0.1:7946' };
  t.deepEqual(
    eventsOfChange(
      change('nodes', 'n1', node, {
        ...node,
        status: 'suspect',
        availability: 'drain',
        serial: 'b2',
      }),
    ).map((e) => `${e.type} ${e.action}`),
    ['node suspect', 'node drain', 'certificate renewed'],
  );
});

test('a rotated join token is told, a worker secret made for the first time is not', (t) => {
  const ca = { certPem: 'c', sealedSecret: { k: 1 }, rotatedAt: '1' };
  t.deepEqual(
    eventsOfChange(
      change('settings', 'ca', ca, { ...ca, sealedWorkerSecret: { k: 2 }, rotatedAt: '2' }),
    ),
    [],
  );
  t.like(eventsOfChange(change('settings', 'ca', ca, { ...ca, sealedSecret: { k: 3 } }))[0], {
    action: 'token-rotated',
    subject: 'manager',
  });
});

test('a state restored from a snapshot is not news', (t) => {
  t.deepEqual(
    eventsOfChange({ ...change('nodes', 'n1', undefined, { status: 'ready' }), restored: true }),
    [],
  );
});
