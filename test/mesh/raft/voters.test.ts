import test from 'ava';
import type { Membership } from '../../../mesh/raft/types.js';
import {
  faultTolerance,
  type Health,
  nextMembership,
  targetVoters,
} from '../../../mesh/raft/voters.js';

const alive = (since = 0, caughtUp = true): Health => ({
  status: 'alive',
  since,
  caughtUp,
  workerOnly: false,
  holdsKey: true,
});
const health = (entries: Record<string, Health>) => new Map(Object.entries(entries));

/** Applies the policy until it is satisfied, as the leader does one committed change at a time. */
function settle(start: Membership, h: Map<string, Health>, now = 10_000): Membership {
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

test('a voter dead for minutes is replaced by a healthy learner; a partitioned one keeps its seat', (t) => {
  const start = { voters: ['a', 'b', 'c'], learners: ['d'] };
  const h = health({
    a: alive(),
    b: alive(),
    c: { ...alive(1000, false), status: 'dead' },
    d: alive(),
  });
  t.is(nextMembership(start, h, 'a', 1000 + 60_000), undefined, 'dead for a minute: a partition');
  const m = settle(start, h, 1000 + 5 * 60_000);
  t.deepEqual(m, { voters: ['a', 'b', 'd'], learners: [] });
});

test('a partitioned voter of three keeps its seat: the two left are not cut down to one', (t) => {
  const h = health({ a: alive(), b: alive(), c: { ...alive(0, false), status: 'dead' } });
  t.deepEqual(settle({ voters: ['a', 'b', 'c'], learners: [] }, h, 45_000), {
    voters: ['a', 'b', 'c'],
    learners: [],
  });
});

test('a learner is seated only once it is caught up and has been alive a while', (t) => {
  const start = { voters: ['a'], learners: ['b', 'c'] };
  const behind = health({ a: alive(), b: alive(0, false), c: alive(0) });
  t.is(nextMembership(start, behind, 'a', 10_000), undefined, 'b behind: no pair to seat');
  const fresh = health({ a: alive(), b: alive(9000), c: alive(9000) });
  t.is(nextMembership(start, fresh, 'a', 10_000), undefined, 'back for 1 s: not yet stable');
  t.deepEqual(settle(start, fresh, 12_000), { voters: ['a', 'b', 'c'], learners: [] });
});

test('two voters and a learner not ready yet: no voter is stepped down meanwhile', (t) => {
  const start = { voters: ['a', 'b'], learners: ['c'] };
  t.is(
    nextMembership(start, health({ a: alive(), b: alive(), c: alive(0, false) }), 'a', 10_000),
    undefined,
  );
});

test('a node that left is removed at once', (t) => {
  const start = { voters: ['a', 'b', 'c'], learners: [] };
  const m = settle(
    start,
    health({ a: alive(), b: alive(), c: { ...alive(0, false), status: 'left' } }),
    1,
  );
  t.deepEqual(m, { voters: ['a'], learners: ['b'] });
});

test('fault tolerance and the voter target', (t) => {
  t.deepEqual(
    [1, 2, 3, 4, 5].map((n) => faultTolerance(n)),
    [0, 0, 1, 1, 2],
  );
  // A voter already dead has used up one: three voters with one down tolerate no more.
  t.is(faultTolerance(3, 2), 0);
  t.is(faultTolerance(5, 4), 1);
  t.is(faultTolerance(5, 2), 0);
  t.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 9].map((n) => targetVoters(n)),
    [1, 1, 1, 3, 3, 5, 5, 5],
  );
});

test('a learner is seated only once it says it holds the voters’ key', (t) => {
  const start = { voters: ['a'], learners: ['b', 'c'] };
  const keyless = { ...alive(), holdsKey: false };
  t.is(
    nextMembership(start, health({ a: alive(), b: keyless, c: keyless }), 'a', 10_000),
    undefined,
  );
  const m = settle(start, health({ a: alive(), b: alive(), c: keyless }));
  t.deepEqual(m, start, 'from one voter, two must be ready: c lacks the key');
  t.deepEqual(settle(start, health({ a: alive(), b: alive(), c: alive() })), {
    voters: ['a', 'b', 'c'],
    learners: [],
  });
});

test('a node that joined with a worker token is never seated, nor counted toward the target', (t) => {
  const worker = { ...alive(), workerOnly: true };
  const start = { voters: ['a'], learners: ['b', 'w1', 'w2'] };
  const h = health({ a: alive(), b: alive(), w1: worker, w2: worker });
  t.deepEqual(settle(start, h), start, 'two nodes may be seated: one voter is the odd count');
  const three = { voters: ['a'], learners: ['b', 'c', 'w1'] };
  t.deepEqual(settle(three, health({ a: alive(), b: alive(), c: alive(), w1: worker })), {
    voters: ['a', 'b', 'c'],
    learners: ['w1'],
  });
});
