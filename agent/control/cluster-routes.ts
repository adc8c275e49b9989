import type { Membership } from '../../mesh/membership/runtime.js';
import type { Member } from '../../mesh/membership/state.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import { faultTolerance, targetVoters } from '../../mesh/raft/voters.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Backups } from '../cluster/backup.js';
import type { Nodes } from '../cluster/nodes.js';
import { InvalidError } from '../errors.js';
import type { Authority, TokenKind } from '../identity/authority.js';
import type { CaRotation } from '../identity/ca-rotation.js';
import { VERSION } from '../identity/meta.js';
import type { Autolock } from '../secrets/autolock.js';
import type { ControlHandlers, RaftStatus, StatusResponse } from './api.js';

type ClusterRoutes =
  | 'GET /v1/status'
  | 'GET /v1/nodes'
  | 'GET /v1/token'
  | 'POST /v1/token/rotate'
  | 'POST /v1/backup'
  | 'GET /v1/ca'
  | 'POST /v1/ca/rotate'
  | 'POST /v1/unlock'
  | 'GET /v1/unlock-key'
  | 'POST /v1/unlock-key/rotate'
  | 'POST /v1/autolock';

export interface ClusterRoutesOptions {
  self: { nodeId: string; clusterId: string; address: string };
  membership: Membership;
  raft: RaftNode;
  state: ClusterState;
  nodes: Nodes;
  tokens: Authority;
  backups: Backups;
  rotation: CaRotation;
  autolock: Autolock;
}

function tokenKind(kind: unknown): TokenKind {
  if (kind === undefined || kind === 'manager' || kind === 'worker') return kind ?? 'manager';
  throw new InvalidError(`a token is of kind manager or worker, not "${String(kind)}"`);
}

/** The control API's routes about the cluster itself: this node's status, the nodes, tokens, the CA, backups. */
export function clusterRoutes(options: ClusterRoutesOptions): Pick<ControlHandlers, ClusterRoutes> {
  const { self, membership, nodes, tokens, backups, rotation, autolock } = options;
  return {
    'GET /v1/status': async (): Promise<StatusResponse> => {
      const { lock } = await autolock.lockState();
      const members = membership.members();
      const count = (status: string) => members.filter((m) => m.status === status).length;
      return {
        ...self,
        version: VERSION,
        raft: raftStatus(options.raft, options.state, members),
        members: {
          alive: count('alive'),
          suspect: count('suspect'),
          dead: count('dead'),
          left: count('left'),
        },
        lock,
        pid: process.pid,
      };
    },
    'GET /v1/nodes': () => nodes.list(),
    'GET /v1/token': async ({ kind }) => ({ token: await tokens.token(tokenKind(kind)) }),
    'POST /v1/token/rotate': async ({ kind }) => ({ token: await tokens.rotate(tokenKind(kind)) }),
    'GET /v1/ca': () => rotation.status(),
    'POST /v1/ca/rotate': () => rotation.rotate(),
    'POST /v1/unlock': ({ key }) => autolock.unlock(key),
    'GET /v1/unlock-key': () => autolock.unlockKey(),
    'POST /v1/unlock-key/rotate': () => autolock.rotate(),
    'POST /v1/autolock': ({ on }) => {
      if (typeof on !== 'boolean') throw new InvalidError('autolock is turned on or off');
      return autolock.turn(on);
    },
    'POST /v1/backup': ({ passphrase }) =>
      backups.take({ passphrase: typeof passphrase === 'string' ? passphrase : undefined }),
  };
}

/** Live members that may be seated: those that did not join with a worker token. */
function seatable(members: Member[], state: ClusterState): number {
  return members.filter((m) => m.status === 'alive' && !state.get('nodes', m.id)?.value.workerOnly)
    .length;
}

function raftStatus(node: RaftNode, state: ClusterState, members: Member[]): RaftStatus {
  const { raft, lastCampaign: campaign } = node;
  const { voters } = raft.membership;
  const at = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  const live = members.filter((m) => m.status === 'alive' && voters.includes(m.id)).length;
  return {
    role: raft.role,
    term: raft.term,
    leader: raft.leader,
    commit: raft.log.committed,
    applied: raft.log.applied,
    voters: raft.membership.voters,
    learners: raft.membership.learners,
    tolerates: faultTolerance(voters.length, live),
    targetVoters: targetVoters(seatable(members, state)),
    stateDigest: state.digest(),
    lastCampaign: campaign
      ? {
          term: campaign.term,
          leaderHeardAt: new Date(campaign.leaderHeardAt).toISOString(),
          preVoteAt: at(campaign.preVoteAt),
          voteAt: at(campaign.voteAt),
          leaderAt: at(campaign.leaderAt),
          committedAt: at(campaign.committedAt),
        }
      : null,
  };
}
