import test from 'ava';
import { RaftError } from '../../../mesh/raft/raft.js';
import { checkLinearizable } from '../../sim/linearizability.js';
import { Cluster, commands } from './harness.js';

test('a node that times out first wins the election and commits a no-op of its term', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  t.is(c.node('a').role, 'leader');
  t.is(c.node('b').leader, 'a');
  t.is(c.node('a').term, 1);
  c.heartbeat(); // followers learn the new commit index with the next append
  t.deepEqual(
    c.applied.get('b')?.map((e) => e.kind),
    ['noop'],
  );
});

test('commands are committed once a quorum holds them, and applied everywhere in order', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  c.node('a').propose('x=1');
  c.node('a').propose('x=2');
  c.settle();
  t.deepEqual(commands(c.applied.get('a') ?? []), ['x=1', 'x=2'], 'a and b are a quorum');
  t.deepEqual(commands(c.applied.get('c') ?? []), []);
  c.heal();
  c.heartbeat();
  t.deepEqual(commands(c.applied.get('c') ?? []), ['x=1', 'x=2'], 'the straggler catches up');
});

test('a straggler gets what it missed in appends of about 1 MiB at most, a larger entry alone', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  // Six deploys of 400 KiB each, then one larger than the budget by itself.
  const missed = [1, 2, 3, 4, 5, 6].map((n) => String(n).repeat(400 * 1024));
  missed.push('7'.repeat(3 * 1024 * 1024));
  for (const command of missed) c.node('a').propose(command);
  c.settle();
  c.heal();
  c.heartbeat();
  t.deepEqual(commands(c.applied.get('c') ?? []), missed, 'the straggler caught up, in order');
  const sent = c.delivered
    .flatMap((m) => (m.type === 'append' && m.to === 'c' ? [commands(m.entries)] : []))
    .filter((batch) => batch.length > 0)
    .map((batch) => batch.map((command) => (command as string)[0]));
  t.deepEqual(sent, [['1', '2'], ['3', '4'], ['5', '6'], ['7']]);
});

test('followers refuse proposals and name the leader', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  const error = t.throws(() => c.node('b').propose('x'), { instanceOf: RaftError });
  t.is(error?.code, 'not-leader');
  t.is(error?.leader, 'a');
});

test('pre-vote: a partitioned node does not inflate its term or depose the leader', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  for (let i = 0; i < 100; i++) {
    c.node('c').tick();
    c.settle();
  }
  t.is(c.node('c').term, 1, 'pre-votes lost, so no new term');
  c.heal();
  c.heartbeat();
  t.is(c.node('a').role, 'leader');
  t.is(c.node('c').leader, 'a');
});

test('a candidate with a shorter log cannot win', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  c.node('a').propose('only on a and b');
  c.settle();
  c.heal();
  c.isolate('a'); // the leader is gone; c lags behind b
  c.elect('c');
  t.not(c.node('c').role, 'leader', 'b refuses: c lacks a committed entry');
  t.not(c.node('b').vote, 'c', 'b did not vote for c');
  c.elect('b');
  t.is(c.node('b').role, 'leader');
});

test('a leader cut off from a quorum steps down (check-quorum)', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('a');
  for (let i = 0; i < 2 * 10; i++) c.node('a').tick();
  t.is(c.node('a').role, 'follower');
});

test('a divergent follower is repaired: its uncommitted suffix is replaced', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('a');
  c.node('a').propose('lost 1');
  c.node('a').propose('lost 2');
  c.settle();
  c.elect('b');
  c.node('b').propose('kept');
  c.settle();
  c.heal();
  c.heartbeat();
  const log = c.node('a').log;
  t.deepEqual(commands(log.slice(1, log.lastIndex)), ['kept']);
  t.deepEqual(commands(c.applied.get('a') ?? []), ['kept']);
});

test('learners receive the log but do not count for the quorum nor campaign', (t) => {
  const c = new Cluster(['a', 'b', 'l'], { voters: ['a', 'b'], learners: ['l'] });
  c.elect('a');
  c.node('a').propose('x');
  c.settle();
  c.heartbeat();
  t.deepEqual(commands(c.applied.get('l') ?? []), ['x']);
  for (let i = 0; i < 50; i++) c.node('l').tick();
  t.is(c.node('l').role, 'follower');
  c.isolate('b');
  c.node('a').propose('y');
  c.settle();
  t.deepEqual(
    commands(c.applied.get('a') ?? []),
    ['x'],
    'a voter plus a learner is no quorum of two voters',
  );
});

test('membership changes one voter at a time, effective once in the log', (t) => {
  const c = new Cluster(['a']);
  c.elect('a');
  c.add('b');
  c.node('a').proposeMembership({ voters: ['a'], learners: ['b'] });
  c.settle();
  t.deepEqual(c.node('b').membership, { voters: ['a'], learners: ['b'] });
  t.throws(() => c.node('a').proposeMembership({ voters: ['a', 'b', 'x'], learners: [] }), {
    message: /one voter at a time/,
  });
  c.node('a').proposeMembership({ voters: ['a', 'b'], learners: [] });
  c.settle();
  t.deepEqual(c.node('b').membership.voters, ['a', 'b']);
  c.isolate('a');
  c.elect('b');
  t.not(c.node('b').role, 'leader', 'one of two voters is no quorum');
});

test('leadership transfer hands over to a caught-up voter', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.node('a').propose('x');
  c.settle();
  c.node('a').transferLeadership('c');
  c.settle();
  t.is(c.node('c').role, 'leader');
  t.is(c.node('a').leader, 'c');
  t.deepEqual(commands(c.applied.get('c') ?? []), ['x']);
});

test('ReadIndex confirms leadership with a quorum before a read is served', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.node('a').propose('x');
  c.settle();
  c.isolate('a');
  c.node('a').readIndex('r1');
  c.settle();
  t.deepEqual(c.reads.get('a'), [], 'an isolated leader cannot confirm it still leads');
  c.heal();
  c.node('a').readIndex('r2');
  c.settle();
  // The round for r2 went out after r1 was asked, so it confirms both.
  const reads = c.reads.get('a') ?? [];
  t.deepEqual(
    reads.map((r) => r.requestId),
    ['r1', 'r2'],
  );
  t.true(reads.every((r) => r.index === c.node('a').log.committed));
});

test('a follower behind the compacted log is sent the snapshot', (t) => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  for (let i = 0; i < 10; i++) c.node('a').propose(`x=${i}`);
  c.settle();
  c.node('a').compact(c.node('a').log.applied, { state: 'x=9' });
  c.heal();
  c.heartbeat();
  t.is(c.node('c').currentSnapshot.index, c.node('a').log.base.index);
  t.deepEqual(c.node('c').currentSnapshot.data, { state: 'x=9' });
  c.node('a').propose('after');
  c.settle();
  c.heartbeat();
  t.deepEqual(commands(c.applied.get('c') ?? []), ['after']);
});

test('the linearizability checker rejects a stale read and accepts a concurrent one', (t) => {
  const w = (value: string, invokedAt: number, returnedAt: number) =>
    ({ client: 0, kind: 'write', key: 'k', value, invokedAt, returnedAt }) as const;
  const r = (value: string | null, invokedAt: number, returnedAt: number) =>
    ({ client: 1, kind: 'read', key: 'k', value, invokedAt, returnedAt }) as const;
  t.true(checkLinearizable([w('1', 0, 10), w('2', 20, 30), r('2', 40, 50)]).ok);
  t.false(checkLinearizable([w('1', 0, 10), w('2', 20, 30), r('1', 40, 50)]).ok, 'stale');
  t.true(checkLinearizable([w('1', 0, 10), w('2', 20, 60), r('1', 40, 50)]).ok, 'concurrent');
  t.true(
    checkLinearizable([w('1', 0, 10), w('2', 20, Infinity), r('2', 40, 50)]).ok,
    'unknown outcome, observed',
  );
  t.false(checkLinearizable([w('1', 0, 10), r('2', 40, 50)]).ok, 'a value nobody wrote');
});

test('a follower whose log went backwards (a lost suffix) is found again and catches up', (t) => {
  const c = new Cluster(['a', 'b', 'c', 'l'], { voters: ['a', 'b', 'c'], learners: ['l'] });
  c.elect('a');
  for (let i = 1; i <= 5; i++) c.node('a').propose(`x=${i}`);
  c.settle();
  c.heartbeat();
  const last = c.node('a').log.lastIndex;
  t.is(c.node('l').log.lastIndex, last);
  // The learner comes back with two entries; the leader still believes it holds all of them.
  c.restartWithPrefix('l', 2);
  c.heartbeat();
  c.heartbeat();
  t.is(c.node('l').log.lastIndex, last, 'the leader sent the lost entries again');
  t.is(c.node('l').log.committed, c.node('a').log.committed);
  t.deepEqual(commands(c.applied.get('l') ?? []), ['x=1', 'x=2', 'x=3', 'x=4', 'x=5']);
});
