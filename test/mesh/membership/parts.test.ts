import test from 'ava';
import { Awareness } from '../../../mesh/membership/awareness.js';
import { BroadcastQueue } from '../../../mesh/membership/broadcast.js';
import {
  LAN_DEFAULTS,
  pushPullIntervalMs,
  retransmitLimit,
  suspicionMinMs,
} from '../../../mesh/membership/config.js';
import { parseSwimMessage, type Update } from '../../../mesh/membership/messages.js';
import { MemberState } from '../../../mesh/membership/state.js';
import { Suspicion } from '../../../mesh/membership/suspicion.js';
import { simMeta } from '../../sim/swim-sim.js';

const alive = (id: string, inc: number): Update => ({
  status: 'alive',
  id,
  inc,
  addr: id,
  meta: simMeta(id),
});
const claim = (
  status: 'suspect' | 'dead' | 'left',
  id: string,
  inc: number,
  from = 'x',
): Update => ({ status, id, inc, from });

function state() {
  const self = {
    id: 'me',
    address: 'me',
    meta: simMeta('me'),
    incarnation: 0,
    status: 'alive' as const,
    since: 0,
  };
  return new MemberState(LAN_DEFAULTS, self, new Awareness(8));
}

test('memberlist formulas: suspicion, retransmits and push-pull scale with cluster size', (t) => {
  t.is(suspicionMinMs(LAN_DEFAULTS, 3), 4000); // floor of max(1, log10 n)
  t.is(suspicionMinMs(LAN_DEFAULTS, 100), 8000);
  t.is(suspicionMinMs(LAN_DEFAULTS, 1000), 12_000);
  t.is(retransmitLimit(LAN_DEFAULTS, 100), 12);
  t.is(retransmitLimit(LAN_DEFAULTS, 1000), 16);
  t.is(pushPullIntervalMs(LAN_DEFAULTS, 32), 30_000);
  t.is(pushPullIntervalMs(LAN_DEFAULTS, 1000), 180_000);
});

test('a higher incarnation wins; at equal incarnation the worse status wins', (t) => {
  const s = state();
  s.apply(alive('a', 1), 0);
  s.apply(alive('a', 0), 1); // stale
  t.is(s.members.get('a')?.incarnation, 1);
  s.apply(claim('suspect', 'a', 1), 2);
  t.is(s.members.get('a')?.status, 'suspect');
  s.apply(alive('a', 1), 3); // same incarnation cannot clear a suspicion
  t.is(s.members.get('a')?.status, 'suspect');
  s.apply(alive('a', 2), 4); // the member refuted
  t.is(s.members.get('a')?.status, 'alive');
  s.apply(claim('dead', 'a', 2), 5);
  t.is(s.members.get('a')?.status, 'dead');
  s.apply(claim('suspect', 'a', 2), 6); // the dead stay dead at that incarnation
  t.is(s.members.get('a')?.status, 'dead');
  s.apply(alive('a', 3), 7); // ... until they come back
  t.is(s.members.get('a')?.status, 'alive');
  s.apply(claim('left', 'a', 3), 8);
  s.apply(claim('dead', 'a', 3), 9); // leaving is final at that incarnation
  t.is(s.members.get('a')?.status, 'left');
  s.apply(claim('suspect', 'b', 5), 10); // news of unknown members is not believed
  t.false(s.members.has('b'));
});

test('news that we are suspect or dead is refuted with a higher incarnation', (t) => {
  const s = state();
  s.apply(claim('suspect', 'me', 0), 1);
  t.is(s.self.incarnation, 1);
  t.is(s.self.status, 'alive');
  s.apply(claim('dead', 'me', 4), 2);
  t.is(s.self.incarnation, 5);
  // A previous life of ours that others remember as alive with a higher incarnation is outbid.
  s.apply(alive('me', 9), 3);
  t.is(s.self.incarnation, 10);
  const refutation = s.broadcasts.take(10, 10).find((u) => u.id === 'me');
  t.like(refutation, { status: 'alive', inc: 10 });
});

test('push-pull makes a remote "dead" only a suspicion, so the member can refute it', (t) => {
  const s = state();
  s.apply(alive('a', 1), 0);
  s.merge([claim('dead', 'a', 1)], 1);
  t.is(s.members.get('a')?.status, 'suspect');
});

test('the suspicion timeout falls from max to min as independent members confirm', (t) => {
  const s = new Suspicion(0, 1000, 'origin', 2, 8000, 48_000);
  t.is(s.deadline, 1000 + 48_000);
  t.false(s.confirm('origin'), 'our own suspicion coming back is not a confirmation');
  t.true(s.confirm('b'));
  t.true(s.deadline < 1000 + 48_000 && s.deadline > 1000 + 8000);
  t.false(s.confirm('b'), 'one vote per member');
  t.true(s.confirm('c'));
  t.is(s.deadline, 1000 + 8000);
  t.false(s.confirm('d'), 'no need for more than k');
  t.is(
    new Suspicion(0, 0, 'o', 0, 4000, 24_000).deadline,
    4000,
    'tiny clusters expect no confirmations',
  );
});

test('broadcasts: least-sent first, superseded in place, dropped at the limit', (t) => {
  const q = new BroadcastQueue();
  q.enqueue(alive('a', 1));
  q.enqueue(alive('b', 1));
  t.deepEqual(
    q.take(1, 2).map((u) => u.id),
    ['a'],
  );
  q.enqueue(alive('c', 1));
  t.deepEqual(
    q.take(2, 2).map((u) => u.id),
    ['b', 'c'],
    'unsent ones before the once-sent',
  );
  q.enqueue(alive('a', 2)); // supersedes a@1, and starts its count afresh
  t.deepEqual(
    q.take(5, 2).map((u) => `${u.id}@${u.inc}`),
    ['a@2', 'b@1', 'c@1'],
  );
  t.is(q.size, 1);
  t.deepEqual(
    q.take(5, 2).map((u) => u.id),
    ['a'],
  );
  t.is(q.size, 0);
});

test('local health stretches timeouts and stays within bounds', (t) => {
  const a = new Awareness(8);
  t.is(a.scale(500), 500);
  a.apply(3);
  t.is(a.scale(500), 2000);
  a.apply(100);
  t.is(a.health, 7);
  a.apply(-100);
  t.is(a.health, 0);
});

test('malformed SWIM messages are rejected with a reason', (t) => {
  t.throws(() => parseSwimMessage({ type: 'ping', addr: 'x' }), {
    message: /ping without seq and target/,
  });
  t.throws(() => parseSwimMessage({ type: 'boom', addr: 'x' }), {
    message: /unknown SWIM message type/,
  });
  t.throws(
    () =>
      parseSwimMessage({
        type: 'gossip',
        addr: 'x',
        updates: [{ status: 'alive', id: 'a', inc: 1 }],
      }),
    {
      message: /alive update without addr/,
    },
  );
  t.throws(() => parseSwimMessage({ type: 'push', addr: 'x', join: true, state: 'all' }), {
    message: /state must be a list/,
  });
  const withIngress = (ingress: unknown) => ({
    type: 'gossip',
    addr: 'x',
    updates: [{ ...alive('a', 1), meta: { ...simMeta('a'), ingress } }],
  });
  t.throws(() => parseSwimMessage(withIngress('maybe')), {
    message: /meta\.ingress is one of listening, off/,
  });
  t.notThrows(() => parseSwimMessage(withIngress('listening')));
  const refused = withIngress('listening');
  (refused.updates[0]?.meta as Record<string, unknown>).ingressUnserved = [{ port: 'eighty' }];
  t.throws(() => parseSwimMessage(refused), { message: /meta\.ingressUnserved/ });
  const ok = { type: 'ack', addr: 'x', seq: 3, updates: [alive('a', 1), claim('dead', 'b', 2)] };
  t.deepEqual(parseSwimMessage(ok), ok);
});
