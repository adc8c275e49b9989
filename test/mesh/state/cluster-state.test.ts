import test from 'ava';
import { ClusterState, type Write } from '../../../mesh/state/cluster-state.js';
import { KINDS } from '../../../mesh/state/kinds.js';
import { nodeRecord, serviceRecord, taskRecord, taskStatus } from '../../helpers/records.js';

const stack = (services: string[] = ['web']) => ({ name: 'shop', services, deployedAt: '' });
const web = serviceRecord({ stack: 'shop' });
const task = { ...taskRecord(1, 1, 'n1'), id: 'shop.web.1.a', serviceId: 'shop.web' };

test('objects carry the index of their last write as version; watchers see every change', (t) => {
  const state = new ClusterState();
  const changes: string[] = [];
  state.watch((c) => changes.push(`${c.kind}/${c.id}:${c.object?.version ?? 'deleted'}`));
  t.deepEqual(state.apply(3, { op: 'put', kind: 'nodes', id: 'n1', value: nodeRecord('n1') }), {
    ok: true,
    version: 3,
  });
  const relabelled = nodeRecord('n1', { labels: { zone: 'b' } });
  t.deepEqual(state.apply(4, { op: 'put', kind: 'nodes', id: 'n1', value: relabelled }), {
    ok: true,
    version: 4,
  });
  state.apply(5, { op: 'delete', kind: 'nodes', id: 'n1' });
  t.deepEqual(changes, ['nodes/n1:3', 'nodes/n1:4', 'nodes/n1:deleted']);
  t.is(state.get('nodes', 'n1'), undefined);
});

test('a conditional write loses against a newer version, and nothing changes', (t) => {
  const state = new ClusterState();
  state.apply(1, { op: 'put', kind: 'stacks', id: 'shop', value: stack(['a']) });
  state.apply(2, { op: 'put', kind: 'stacks', id: 'shop', value: stack(['b']), ifVersion: 1 });
  const late = state.apply(3, {
    op: 'put',
    kind: 'stacks',
    id: 'shop',
    value: stack(['c']),
    ifVersion: 1,
  });
  t.deepEqual(late, { ok: false, reason: 'stacks/shop is at version 2, not 1' });
  t.deepEqual(state.get('stacks', 'shop')?.value, stack(['b']));
});

test('a malformed command is refused with a reason and changes nothing', (t) => {
  const state = new ClusterState();
  const before = state.digest();
  t.like(state.apply(1, { op: 'put', kind: 'planets', id: 'x', value: 1 }), {
    ok: false,
    reason: 'unknown kind "planets"',
  });
  t.like(state.apply(2, 'garbage'), { ok: false });
  t.is(state.digest(), before);
});

test('every kind refuses a malformed value at apply, naming the key, and nothing changes', (t) => {
  const state = new ClusterState();
  state.apply(1, { op: 'put', kind: 'services', id: 'shop.web', value: web });
  state.apply(2, { op: 'put', kind: 'tasks', id: task.id, value: task });
  const before = state.digest();
  const refusals: Array<[Write, RegExp]> = [
    [{ op: 'put', kind: 'tasks', id: 'x', value: 'x' }, /^tasks\/x must be an object$/],
    [{ op: 'put', kind: 'nodes', id: 'n1', value: null }, /^nodes\/n1 must be an object$/],
    [
      { op: 'put', kind: 'nodes', id: 'n1', value: { ...nodeRecord('n1'), status: 'gone' } },
      /^nodes\/n1\.status must be one of joining, ready, suspect, down, left, removed$/,
    ],
    [{ op: 'put', kind: 'stacks', id: 'shop', value: stack(['Web!']) }, /services\[0\] must be/],
    [
      { op: 'put', kind: 'services', id: 'shop.web', value: { ...web, replicas: -1 } },
      /^services\/shop\.web\.replicas must be a whole number >= 0$/,
    ],
    [
      { op: 'put', kind: 'services', id: 'shop.api', value: web },
      /^services\/shop\.api: its ID must be shop\.web/,
    ],
    [
      { op: 'put', kind: 'statuses', id: task.id, value: { ...taskStatus('running'), ports: 1 } },
      /ports must be a list/,
    ],
    [{ op: 'put', kind: 'secrets', id: 'db', value: {} }, /^secrets\/db\.name is missing$/],
    [
      {
        op: 'put',
        kind: 'secrets',
        id: 'db',
        value: {
          name: 'db',
          versions: [
            {
              version: 1,
              sealed: { iv: '', data: 'plain text!', tag: '' },
              size: 1,
              createdAt: '',
            },
          ],
          labels: {},
        },
      },
      /sealed\.data must be base64/,
    ],
    [
      {
        op: 'put',
        kind: 'services',
        id: 'shop.web',
        value: {
          ...web,
          secrets: [
            {
              source: 'pw',
              version: 1,
              target: '/run/secrets/pw',
              uid: '0',
              gid: '0',
              mode: 0o400,
            },
          ],
        },
      },
      /^services\/shop\.web: secrets\/pw does not exist$/,
    ],
    [
      {
        op: 'put',
        kind: 'certificates',
        id: 'shop.example',
        value: {
          host: 'shop.example',
          certPem: '',
          notAfter: '',
          subject: '',
          addedAt: '',
        },
      },
      /^certificates\/shop\.example\.sealedKey is missing$/,
    ],
  ];
  for (const [write, reason] of refusals) {
    const outcome = state.apply(3, { op: 'batch', writes: [write] });
    t.false(outcome.ok, `${write.kind}/${write.id} refused`);
    t.regex(outcome.ok ? '' : outcome.reason, reason);
  }
  t.is(state.digest(), before, 'nothing changed');
  for (const kind of KINDS) t.deepEqual(state.damaged(kind), []);
});

test('references are checked against the state as the command leaves it', (t) => {
  const state = new ClusterState();
  t.like(state.apply(1, { op: 'put', kind: 'tasks', id: task.id, value: task }), {
    ok: false,
    reason: `tasks/${task.id}: service shop.web does not exist`,
  });
  const together = state.apply(2, {
    op: 'batch',
    writes: [
      { op: 'put', kind: 'services', id: 'shop.web', value: web },
      { op: 'put', kind: 'tasks', id: task.id, value: task },
    ],
  });
  t.true(together.ok, 'a service and its task in one command');
  t.like(
    state.apply(3, { op: 'put', kind: 'statuses', id: 'other', value: taskStatus('running') }),
    {
      ok: false,
      reason: 'statuses/other: no such task',
    },
  );
  t.like(
    state.apply(4, {
      op: 'put',
      kind: 'statuses',
      id: task.id,
      value: taskStatus('running', 'n2'),
    }),
    { ok: false, reason: `statuses/${task.id}: the task is assigned to n1, not n2` },
  );
  t.true(
    state.apply(5, { op: 'put', kind: 'statuses', id: task.id, value: taskStatus('running') }).ok,
  );
  const stopped = { ...task, desired: 'shutdown' as const };
  t.true(
    state.apply(6, {
      op: 'batch',
      writes: [
        { op: 'delete', kind: 'services', id: 'shop.web' },
        { op: 'put', kind: 'tasks', id: task.id, value: stopped },
      ],
    }).ok,
    'a task told to shut down outlives its service',
  );
});

test('a snapshot restores an identical replica', (t) => {
  const a = new ClusterState();
  a.apply(1, { op: 'put', kind: 'services', id: 'shop.web', value: web });
  a.apply(2, { op: 'put', kind: 'tasks', id: task.id, value: task });
  const b = new ClusterState();
  b.restore(structuredClone(a.snapshot()));
  t.is(b.digest(), a.digest());
  t.is(b.appliedIndex, 2);
});

test('an object a snapshot holds that fails its checks is set aside as damaged, not stored', (t) => {
  const a = new ClusterState();
  a.apply(1, { op: 'put', kind: 'services', id: 'shop.web', value: web });
  a.apply(2, { op: 'put', kind: 'tasks', id: task.id, value: task });
  const snapshot = structuredClone(a.snapshot());
  const tasks = snapshot.objects.find(([kind]) => kind === 'tasks')?.[1] ?? [];
  tasks.push({ id: 'bad', version: 2, value: 'x' });
  const b = new ClusterState();
  b.restore(snapshot);
  t.is(b.digest(), a.digest(), 'everything else restored');
  t.is(b.get('tasks', 'bad'), undefined);
  t.deepEqual(b.damaged('tasks'), [
    { kind: 'tasks', id: 'bad', reason: 'tasks/bad must be an object' },
  ]);
});
