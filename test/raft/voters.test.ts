import test from 'ava';
import type { Membership } from '../../mesh/raft/types.js';
import { type Health, nextMembership } from '../../mesh/raft/voters.js';

const alive = (since = 0): Health => ({ status: 'alive', since });
const health = (entries: Record<string, Health>) => new Map(Object.entries(entries));

/** Applies the policy until it is satisfied, as the leader does one committed change at a time. */
function settle(start: Membership, h: Map<string, Health>, now = 0): Membership {
  let current = start;
  for (let i = 0; i < 20; i++) {
    const next = nextMembership(current, h, 'a', now);
    if (!next) return current;
    current = next;
  }
  throw new Error('the policy did not settle');
}

test('newcomers become learners, then voters up to an odd count', (t) => {
  const h = health({ a: alive(), b: alive(), c: alive(), d: alive() });
  const m = settle({ voters: ['a'], learners: [] }, h);
  t.is(m.voters.length, 3);
  t.is(m.learners.length, 1);
  t.deepEqual([...m.voters, ...m.learners].sort(), ['a', 'b', 'c', 'd']);
});

test('never more than five voters; everyone else is a learner', (t) => {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const m = settle(
    { voters: ['a'], learners: [] },
    health(Object.fromEntries(ids.map((id) => [id, alive()]))),
  );
  t.is(m.voters.length, 5);
  t.is(m.learners.length, 2);
});

test('two nodes: one voter and one learner, so losing the second keeps the leader', (t) => {
  const m = settle({ voters: ['a', 'b'], learners: [] }, health({ a: alive(), b: alive() }));
  t.deepEqual(m, { voters: ['a'], learners: ['b'] });
});

test('a voter dead for good is replaced by a healthy learner; a briefly dead one is not', (t) => {
  const start = { voters: ['a', 'b', 'c'], learners: ['d'] };
  const h = health({ a: alive(), b: alive(), c: { status: 'dead', since: 1000 }, d: alive() });
  t.is(nextMembership(start, h, 'a', 5000), undefined, 'dead for 4 s: wait');
  const m = settle(start, h, 1000 + 30_000);
  t.deepEqual(m, { voters: ['a', 'b', 'd'], learners: [] });
});

test('a node that left is removed at once', (t) => {
  const start = { voters: ['a', 'b', 'c'], learners: [] };
  const m = settle(start, health({ a: alive(), b: alive(), c: { status: 'left', since: 0 } }), 1);
  t.deepEqual(m, { voters: ['a'], learners: ['b'] });
});
