import type { Membership } from '../../mesh/membership/runtime.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import { faultTolerance, targetVoters } from '../../mesh/raft/voters.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Backups } from '../cluster/backup.js';
import type { Nodes } from '../cluster/nodes.js';
import type { Authority } from '../identity/authority.js';
import type { CaRotation } from '../identity/ca-rotation.js';
import { VERSION } from '../identity/meta.js';
import type { ControlHandlers, RaftStatus, StatusResponse } from './api.js';

type ClusterRoutes =
  | 'GET /v1/status'
  | 'GET /v1/nodes'
  | 'GET /v1/token'
  | 'POST /v1/token/rotate'
  | 'POST /v1/backup'
  | 'GET /v1/ca'
  | 'POST /v1/ca/rotate';

export interface ClusterRoutesOptions {
  self: { nodeId: string; clusterId: string; address: string };
  membership: Membership;
  raft: RaftNode;
  state: ClusterState;
  nodes: Nodes;
  tokens: Authority;
  backups: Backups;
  rotation: CaRotation;
}

/** The control API's routes about the cluster itself: this node's status, the nodes, tokens, the CA, backups. */
export function clusterRoutes(options: ClusterRoutesOptions): Pick<ControlHandlers, ClusterRoutes> {
  const { self, membership, nodes, tokens, backups, rotation } = options;
  return {
    'GET /v1/status': (): StatusResponse => {
      const members = membership.members();
      const count = (status: string) => members.filter((m) => m.status === status).length;
      return {
        ...self,
        version: VERSION,
        raft: raftStatus(options.raft, options.state, count('alive')),
        members: {
          alive: count('alive'),
          suspect: count('suspect'),
          dead: count('dead'),
          left: count('left'),
        },
      };
    },
    'GET /v1/nodes': () => nodes.list(),
    'GET /v1/token': async () => ({ token: await tokens.token() }),
    'POST /v1/token/rotate': async () => ({ token: await tokens.rotate() }),
    'GET /v1/ca': () => rotation.status(),
    'POST /v1/ca/rotate': () => rotation.rotate(),
    'POST /v1/backup': ({ passphrase }) =>
      backups.take({ passphrase: typeof passphrase === 'string' ? passphrase : undefined }),
  };
}

function raftStatus({ raft }: RaftNode, state: ClusterState, alive: number): RaftStatus {
  return {
    role: raft.role,
    term: raft.term,
    leader: raft.leader,
    commit: raft.log.committed,
    applied: raft.log.applied,
    voters: raft.membership.voters,
    learners: raft.membership.learners,
    tolerates: faultTolerance(raft.membership.voters.length),
    targetVoters: targetVoters(alive),
    stateDigest: state.digest(),
  };
}
