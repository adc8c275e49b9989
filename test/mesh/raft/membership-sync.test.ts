import test from 'ava';
import { joiningNode, type NodeRecord } from '../../../mesh/api/nodes.js';
import type { Member } from '../../../mesh/membership/state.js';
import { sinceOf } from '../../../mesh/raft/membership-sync.js';

const member = (status: Member['status'], since: number, heardAt?: number): Member => ({
  id: 'n2',
  address: '127.0.0.2:7946',
  meta: {} as Member['meta'],
  incarnation: 1,
  status,
  since,
  ...(heardAt !== undefined && { heardAt }),
});
const recorded = (status: NodeRecord['status'], since: number): NodeRecord => ({
  ...joiningNode('1', 0, since),
  status,
});

test('a node that goes quiet is unreachable since it was last heard, not since gossip said so', (t) => {
  // Heard at 1000, suspected at 2500: the grace before rescheduling counts from 1000.
  t.is(sinceOf('suspect', member('suspect', 2500, 1000), recorded('ready', 0)), 1000);
  t.is(
    sinceOf('suspect', member('suspect', 2500), recorded('ready', 0)),
    2500,
    'never heard: since suspected',
  );
});

test('suspect to down keeps the moment it went quiet; back up starts afresh', (t) => {
  t.is(sinceOf('down', member('dead', 7000, 1000), recorded('suspect', 1000)), 1000);
  t.is(sinceOf('ready', member('alive', 9000, 8999), recorded('down', 1000)), 9000);
  t.is(sinceOf('ready', member('alive', 9000, 9500), recorded('ready', 5)), 5, 'no change: kept');
});
