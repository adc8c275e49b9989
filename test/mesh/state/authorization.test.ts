import test from 'ava';
import { writeRefusal } from '../../../mesh/state/authorization.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import { nodeRecord, serviceRecord, taskRecord, taskStatus } from '../../helpers/records.js';

const VOTERS = ['m1'];

/** A cluster with a manager m1, a worker w1 running task t1, and a worker w2. */
function cluster(): ClusterState {
  const state = new ClusterState();
  const task = { ...taskRecord(1, 1, 'w1'), id: 't1' };
  state.apply(1, {
    op: 'batch',
    writes: [
      { op: 'put', kind: 'nodes', id: 'w1', value: nodeRecord('w1', { serial: 'aa' }) },
      { op: 'put', kind: 'nodes', id: 'w2', value: nodeRecord('w2') },
      { op: 'put', kind: 'services', id: 's.web', value: serviceRecord() },
      { op: 'put', kind: 'tasks', id: 't1', value: task },
    ],
  });
  return state;
}

test('a manager may write desired state; a worker may not, and is told why', (t) => {
  const state = cluster();
  const deploy = {
    op: 'put',
    kind: 'stacks',
    id: 's',
    value: { name: 's', services: [], deployedAt: '' },
  };
  t.is(writeRefusal('m1', deploy, state, VOTERS), undefined);
  t.is(
    writeRefusal('w1', deploy, state, VOTERS),
    'node w1 is a worker (not a Raft voter): it may write only its own task statuses and node record, not put stacks/s; desired state changes on a manager',
  );
  t.regex(
    writeRefusal('w1', { op: 'delete', kind: 'nodes', id: 'w2' }, state, VOTERS) ?? '',
    /not delete nodes\/w2/,
  );
});

test('a worker reports the statuses of its own tasks, and only those', (t) => {
  const state = cluster();
  const status = (nodeId: string) => ({
    op: 'put',
    kind: 'statuses',
    id: 't1',
    value: taskStatus('running', nodeId),
  });
  t.is(writeRefusal('w1', status('w1'), state, VOTERS), undefined);
  t.regex(
    writeRefusal('w2', status('w2'), state, VOTERS) ?? '',
    /only the statuses of its own tasks/,
  );
  t.regex(
    writeRefusal('w2', status('w1'), state, VOTERS) ?? '',
    /only the statuses of its own tasks/,
    'named as another node',
  );
  const batch = {
    op: 'batch',
    writes: [status('w1'), { op: 'delete', kind: 'tasks', id: 't1' }],
  };
  t.regex(
    writeRefusal('w1', batch, state, VOTERS) ?? '',
    /not delete tasks\/t1/,
    'every write of a batch',
  );
});

test('a worker may update what it reports of itself, not what operators or the leader decide', (t) => {
  const state = cluster();
  const own = (changes: object) => ({
    op: 'put',
    kind: 'nodes',
    id: 'w1',
    value: { ...nodeRecord('w1', { serial: 'aa' }), ...changes },
  });
  t.is(
    writeRefusal('w1', own({ version: '0.2.0', labels: { disk: 'ssd' } }), state, VOTERS),
    undefined,
  );
  for (const change of [
    { status: 'removed' },
    { availability: 'drain' },
    { userLabels: { a: 'b' } },
    { serial: 'bb' },
  ])
    t.regex(writeRefusal('w1', own(change), state, VOTERS) ?? '', /only what it reports of itself/);
  t.regex(writeRefusal('w1', { ...own({}), id: 'w2' }, state, VOTERS) ?? '', /not put nodes\/w2/);
});

test('a malformed command from a worker is refused with the reason', (t) => {
  t.is(writeRefusal('w1', 'garbage', cluster(), VOTERS), 'command is not an object');
});
