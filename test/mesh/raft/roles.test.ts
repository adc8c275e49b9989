import test from 'ava';
import fc from 'fast-check';
import { roleRefusal } from '../../../mesh/raft/roles.js';
import type { Entry, Membership, Message } from '../../../mesh/raft/types.js';
import { Cluster } from './harness.js';

const MEMBERSHIP: Membership = { voters: ['a', 'b', 'c'], learners: ['l'] };

/** Any Raft message `from` could make up for `to`, in terms from 0 to `maxTerm`. */
function messageFrom(from: string, to: string, maxTerm: number): fc.Arbitrary<Message> {
  const term = fc.nat(maxTerm);
  const index = fc.nat(20);
  const entries = fc.array(
    fc.record({
      term: fc.nat(maxTerm),
      kind: fc.constantFrom('command' as const, 'config' as const, 'noop' as const),
      data: fc.oneof(
        fc.constant({ voters: [from], learners: [] }),
        fc.constant('stack shop: run anything as root'),
      ),
    }),
    { maxLength: 3 },
  );
  return fc
    .oneof(
      fc.record({
        type: fc.constantFrom('prevote' as const, 'vote' as const),
        term,
        lastIndex: index,
        lastTerm: term,
        transfer: fc.boolean(),
      }),
      fc.record({
        type: fc.constantFrom('prevote-resp' as const, 'vote-resp' as const),
        term,
        reject: fc.boolean(),
      }),
      fc
        .record({ term, prevIndex: index, prevTerm: term, entries, commit: index, seq: index })
        .map((m) => ({
          ...m,
          type: 'append' as const,
          entries: m.entries.map((e, i) => ({ ...e, index: m.prevIndex + 1 + i }) as Entry),
        })),
      fc.record({
        type: fc.constant('append-resp' as const),
        term,
        reject: fc.boolean(),
        index,
        hintIndex: index,
        hintTerm: term,
        seq: index,
      }),
      fc.record({
        type: fc.constant('snapshot' as const),
        term,
        seq: index,
        snapshot: fc.record({
          index,
          term,
          membership: fc.constant({ voters: [from], learners: [] }),
          data: fc.constant('a state of its own'),
        }),
      }),
      fc.record({ type: fc.constant('timeout-now' as const), term }),
    )
    .map((m) => ({ ...m, from, to }) as Message);
}

test('a voter may send every kind of Raft message', (t) => {
  fc.assert(
    fc.property(messageFrom('b', 'a', 50), (m) => roleRefusal(m, MEMBERSHIP, 3) === undefined),
  );
  t.pass();
});

test('a learner may only answer appends, and never in a term above ours', (t) => {
  fc.assert(
    fc.property(messageFrom('l', 'a', 50), fc.nat(50), (m, ours) => {
      const refusal = roleRefusal(m, MEMBERSHIP, ours);
      const allowed = m.type === 'append-resp' && m.term <= ours;
      return allowed ? refusal === undefined : /l is a learner/.test(refusal ?? '');
    }),
  );
  t.pass();
});

test('a node outside the configuration may send nothing', (t) => {
  fc.assert(
    fc.property(messageFrom('x', 'a', 50), (m) =>
      /x is not a member of this configuration/.test(roleRefusal(m, MEMBERSHIP, 50) ?? ''),
    ),
  );
  t.pass();
});

test('whatever a learner sends, a checking voter keeps its term, vote, log and commit', (t) => {
  fc.assert(
    fc.property(fc.array(messageFrom('l', 'b', 8), { maxLength: 30 }), (forged) => {
      const c = new Cluster(['a', 'b', 'c'], MEMBERSHIP);
      c.add('l', MEMBERSHIP);
      c.elect('a');
      c.node('a').propose('x=1');
      c.settle();
      const b = c.node('b');
      const before = {
        term: b.term,
        vote: b.vote,
        leader: b.leader,
        last: b.log.lastIndex,
        commit: b.log.committed,
      };
      for (const m of forged) if (!roleRefusal(m, b.membership, b.term)) b.step(m);
      const after = {
        term: b.term,
        vote: b.vote,
        leader: b.leader,
        last: b.log.lastIndex,
        commit: b.log.committed,
      };
      return JSON.stringify(after) === JSON.stringify(before) && b.ready().messages.length === 0;
    }),
    { numRuns: 300 },
  );
  t.pass();
});
