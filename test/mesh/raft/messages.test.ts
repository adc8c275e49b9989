import test from 'ava';
import { parseRaftMessage } from '../../../mesh/raft/messages.js';

const append = (entries: unknown[], extra: Record<string, unknown> = {}) => ({
  from: 'b',
  to: 'a',
  term: 2,
  type: 'append',
  prevIndex: 4,
  prevTerm: 1,
  commit: 4,
  seq: 1,
  entries,
  ...extra,
});

test('a well-formed append passes', (t) => {
  const ok = append([
    { index: 5, term: 2, kind: 'noop', data: null },
    { index: 6, term: 2, kind: 'config', data: { voters: ['a', 'b'], learners: [] } },
  ]);
  t.deepEqual(parseRaftMessage(ok, 'b', 'a'), ok);
});

test('malformed Raft messages are refused with a reason before Raft sees them', (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [append([], { from: 'c' }), /claims to be from c, but the peer is b/],
    [append([], { to: 'z' }), /addressed to z/],
    [append([], { term: -1 }), /term must be a non-negative integer/],
    [append([{ index: 7, term: 2, kind: 'noop' }]), /entry 0 does not follow index 4/],
    [append([{ index: 5, term: 2, kind: 'shell' }]), /entry 5 is of unknown kind/],
    [
      append([{ index: 5, term: 2, kind: 'config', data: { voters: 'a' } }]),
      /config entry 5 is not a membership/,
    ],
    [
      { from: 'b', to: 'a', term: 2, type: 'snapshot', seq: 1, snapshot: { index: 3 } },
      /without a valid snapshot/,
    ],
    [{ from: 'b', to: 'a', term: 2, type: 'gossip' }, /not a Raft message/],
  ];
  for (const [message, reason] of cases) {
    t.throws(() => parseRaftMessage(message, 'b', 'a'), { message: reason });
  }
});
