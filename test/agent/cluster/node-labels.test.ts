import test from 'ava';
import { Nodes } from '../../../agent/cluster/nodes.js';
import { StateAccess } from '../../../agent/cluster/state-access.js';
import type { Membership } from '../../../mesh/membership/runtime.js';
import type { RaftNode } from '../../../mesh/raft/node.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import { captureLogs } from '../../helpers/logs.js';
import { nodeRecord } from '../../helpers/records.js';

/** Nodes over a replica where n1 is the only voter; a write that got as far as Raft is refused. */
function nodesOver(state: ClusterState): Nodes {
  const raft = {
    membership: { voters: ['n1'], learners: [] },
    raft: { id: 'n1' },
    propose: () => Promise.reject(new Error('not proposed in this test')),
  } as unknown as RaftNode;
  return new Nodes(
    new StateAccess(state, raft, captureLogs('n1').log),
    'n1',
    {} as Membership,
    raft,
  );
}

test('removing a label the node’s agent gave it is refused, saying where it comes from', async (t) => {
  const state = new ClusterState();
  state.restore({
    appliedIndex: 1,
    objects: [
      ['nodes', [{ id: 'n1', version: 1, value: nodeRecord('n1', { labels: { zone: 'a' } }) }]],
    ],
  });
  const error = await t.throwsAsync(nodesOver(state).update({ node: 'n1', labels: ['zone-'] }));
  t.is(
    error?.message,
    "node n1's label zone was given by its agent (--label zone=a at mesh init or join): mesh node label can override it (zone=VALUE), not remove it",
  );
});
