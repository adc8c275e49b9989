import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Membership as Gossip } from '../membership/runtime.js';
import type { Member } from '../membership/state.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { RaftNode } from './node.js';
import { RaftError } from './raft.js';
import { DEFAULT_VOTER_POLICY, type Health, nextMembership, type VoterPolicy } from './voters.js';

/** A node as the replicated state records it, for the scheduler and for `mesh node ls`. */
export interface NodeRecord {
  address: string;
  status: 'ready' | 'down' | 'left';
  labels: Record<string, string>;
  capacity: { cpus: number; memoryBytes: number };
  version: string;
}

function record(member: Member): NodeRecord {
  const status = member.status === 'dead' ? 'down' : member.status === 'left' ? 'left' : 'ready';
  return {
    address: member.address,
    status,
    labels: member.meta.labels,
    capacity: member.meta.capacity,
    version: member.meta.version,
  };
}

/**
 * The leader's side of membership: what SWIM observes becomes Raft configuration (voters and
 * learners, per the voter policy) and node records in the replicated state. Other nodes do nothing
 * here; the next leader picks up where this one stopped.
 */
export class MembershipSync {
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly raft: RaftNode,
    private readonly gossip: Gossip,
    private readonly state: ClusterState,
    private readonly log: Logger,
    private readonly policy: VoterPolicy = DEFAULT_VOTER_POLICY,
  ) {}

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => this.reconcile(), intervalMs);
    this.gossip.on('change', () => this.reconcile());
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private reconcile(): void {
    if (this.raft.raft.role !== 'leader') return;
    const members = this.gossip.members();
    this.placeVoters(members);
    for (const member of members) this.recordNode(member);
  }

  private placeVoters(members: Member[]): void {
    const health = new Map<string, Health>(
      members.map((m) => [m.id, { status: m.status, since: m.since }]),
    );
    const next = nextMembership(
      this.raft.membership,
      health,
      this.raft.raft.id,
      Date.now(),
      this.policy,
    );
    if (!next) return;
    try {
      this.raft.changeMembership(next);
      this.log.info(
        { voters: next.voters, learners: next.learners },
        'raft membership change proposed',
      );
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
      this.log.debug({ reason: error.message }, 'raft membership change deferred');
    }
  }

  private recordNode(member: Member): void {
    const wanted = record(member);
    const current = this.state.get<NodeRecord>('nodes', member.id);
    if ((current && isDeepStrictEqual(current.value, wanted)) || this.inFlight.has(member.id))
      return;
    this.inFlight.add(member.id);
    this.raft
      .propose({ op: 'put', kind: 'nodes', id: member.id, value: wanted })
      .catch((error: Error) =>
        this.log.debug({ node: member.id, reason: error.message }, 'node record not written'),
      )
      .finally(() => this.inFlight.delete(member.id));
  }
}
