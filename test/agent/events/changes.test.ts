/** The blocking query of GET /v1/changes: it answers when the state, the feed or membership moves, or at the wait. */
import { EventEmitter } from 'node:events';
import test from 'ava';
import { Changes } from '../../../agent/events/changes.js';
import type { EventFeed } from '../../../agent/events/feed.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import { nodeRecord } from '../../helpers/records.js';

function setUp(t: { teardown: (f: () => void) => void }) {
  const state = new ClusterState();
  const membership = new EventEmitter();
  const listeners = new Set<() => void>();
  const feed = {
    last: 0,
    onEvent: (listener: () => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const changes = new Changes({ state, feed: feed as unknown as EventFeed, membership });
  changes.start();
  t.teardown(() => changes.stop());
  const event = () => {
    feed.last++;
    for (const l of listeners) l();
  };
  return { state, membership, changes, event };
}

test('a mark already passed is answered at once; with none moving, at the end of the wait', async (t) => {
  const { changes } = setUp(t);
  t.deepEqual(await changes.after({ index: 7 }, 60_000), { index: 0, events: 0, members: 0 });
  t.deepEqual(await changes.after({ index: 0, events: 0, members: 0 }, 20), {
    index: 0,
    events: 0,
    members: 0,
  });
});

test('a write, an event or a membership change answers a waiting query', async (t) => {
  const { state, membership, changes, event } = setUp(t);
  const now = changes.mark();
  const write = changes.after(now, 60_000);
  state.apply(1, { op: 'put', kind: 'nodes', id: 'n1', value: nodeRecord('n1') });
  t.like(await write, { index: 1 });
  const told = changes.after(changes.mark(), 60_000);
  event();
  t.like(await told, { events: 1 });
  const member = changes.after(changes.mark(), 60_000);
  membership.emit('change');
  t.like(await member, { members: 1 });
});

test('stopping answers every waiting query', async (t) => {
  const { changes } = setUp(t);
  const waiting = changes.after(changes.mark(), 60_000);
  changes.stop();
  t.like(await waiting, { index: 0 });
});
