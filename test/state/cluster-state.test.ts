import test from 'ava';
import { ClusterState } from '../../mesh/state/cluster-state.js';

test('objects carry the index of their last write as version; watchers see every change', (t) => {
  const state = new ClusterState();
  const changes: string[] = [];
  state.watch((c) => changes.push(`${c.kind}/${c.id}:${c.object?.version ?? 'deleted'}`));
  t.deepEqual(state.apply(3, { op: 'put', kind: 'nodes', id: 'n1', value: { labels: {} } }), {
    ok: true,
    version: 3,
  });
  t.deepEqual(
    state.apply(4, { op: 'put', kind: 'nodes', id: 'n1', value: { labels: { zone: 'b' } } }),
    { ok: true, version: 4 },
  );
  state.apply(5, { op: 'delete', kind: 'nodes', id: 'n1' });
  t.deepEqual(changes, ['nodes/n1:3', 'nodes/n1:4', 'nodes/n1:deleted']);
  t.is(state.get('nodes', 'n1'), undefined);
});

test('a conditional write loses against a newer version, and nothing changes', (t) => {
  const state = new ClusterState();
  state.apply(1, { op: 'put', kind: 'stacks', id: 'shop', value: 'v1' });
  state.apply(2, { op: 'put', kind: 'stacks', id: 'shop', value: 'v2', ifVersion: 1 });
  const late = state.apply(3, { op: 'put', kind: 'stacks', id: 'shop', value: 'v3', ifVersion: 1 });
  t.deepEqual(late, { ok: false, reason: 'stacks/shop is at version 2, not 1' });
  t.is(state.get('stacks', 'shop')?.value, 'v2');
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

test('a snapshot restores an identical replica', (t) => {
  const a = new ClusterState();
  a.apply(1, { op: 'put', kind: 'services', id: 'web', value: { replicas: 2 } });
  a.apply(2, { op: 'put', kind: 'tasks', id: 'web.1', value: { node: 'n1' } });
  const b = new ClusterState();
  b.restore(structuredClone(a.snapshot()));
  t.is(b.digest(), a.digest());
  t.is(b.appliedIndex, 2);
});
