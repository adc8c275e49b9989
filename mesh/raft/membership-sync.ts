import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { joiningNode, type NodeRecord } from '../api/nodes.js';
import type { Membership as Gossip } from '../membership/runtime.js';
import type { Member } from '../membership/state.js';
import { everyShared } from '../shared-interval.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { RaftNode } from './node.js';
import { RaftError } from './raft.js';
import { DEFAULT_VOTER_POLICY, type Health, nextMembership, type VoterPolicy } from './voters.js';

const STATUS_OF = { alive: 'ready', suspect: 'suspect', dead: 'down', left: 'left' } as const;
/**
 * A node recorded up that gossip has not heard of at all this long into a leader's term is down
 * (its agent is gone: after a full restart, or --force-new-cluster, nobody reports it dead).
 */
const UNSEEN_GRACE_MS = 10_000;

/**
 * What the record should say now: gossip's view, and what users set and the cluster issued kept
 * as it was (a node's gossip names its certificate, but only a signer records one).
 */
function record(member: Member, current: NodeRecord): NodeRecord {
  const status = STATUS_OF[member.status];
  return {
    address: member.address,
    hostname: member.meta.hostname ?? '',
    status,
    since: sinceOf(status, member, current),
    labels: member.meta.labels,
    capacity: member.meta.capacity,
    version: member.meta.version,
    serial: current.serial,
    ...(current.certificates && { certificates: current.certificates }),
    ...(current.workerOnly && { workerOnly: true }),
    ...(current.votersKeyGiven && { votersKeyGiven: current.votersKeyGiven }),
    runtimes: member.meta.runtimes ?? [],
    availability: current.availability,
    userLabels: current.userLabels,
    ...(member.meta.platform ? { platform: member.meta.platform } : {}),
    ...(member.meta.unserved?.length ? { unserved: member.meta.unserved } : {}),
    ...(member.meta.published?.length ? { published: member.meta.published } : {}),
    ...(member.meta.ingress && { ingress: member.meta.ingress }),
    ...(member.meta.ingressUnserved?.length
      ? { ingressUnserved: member.meta.ingressUnserved }
      : {}),
    ...(member.meta.restarting && { restarting: true }),
  };
}

const UNREACHABLE: ReadonlySet<NodeRecord['status']> = new Set(['suspect', 'down']);

/**
 * Since when the record's status holds. An unreachable node (suspect, then down) is unreachable
 * since it was last heard from, not since gossip concluded so: the grace before its tasks are
 * placed elsewhere counts from its last heartbeat, detection included (and suspect to down
 * changes nothing of it).
 */
export function sinceOf(status: NodeRecord['status'], member: Member, current: NodeRecord): number {
  if (current.status === status) return current.since;
  if (!UNREACHABLE.has(status)) return member.since;
  if (UNREACHABLE.has(current.status)) return current.since;
  return Math.min(member.heardAt ?? member.since, member.since);
}

/** The first record of the node that made the cluster, with its certificate as it gossips it. */
function selfRecord(member: Member): NodeRecord {
  const serial = member.meta.serial ?? '';
  const notAfter = Date.parse(member.meta.certExpires ?? '') || 0;
  return { ...joiningNode(serial, notAfter, member.since), status: STATUS_OF[member.status] };
}

/**
 * The leader's side of membership: what SWIM observes becomes Raft configuration (voters and
 * learners, per the voter policy) and node records in the replicated state. Other nodes do nothing
 * here; the next leader picks up where this one stopped.
 */
export class MembershipSync {
  private stopReconciling: (() => void) | undefined;
  private readonly inFlight = new Set<string>();
  /** When this node last became leader (undefined while it is not). */
  private leaderSince: number | undefined;

  constructor(
    private readonly raft: RaftNode,
    private readonly gossip: Gossip,
    private readonly state: ClusterState,
    private readonly log: Logger,
    /** Whether the member says it holds the voters' key the state's sealed values name. */
    private readonly holdsKey: (member: Member) => boolean,
    private readonly policy: VoterPolicy = DEFAULT_VOTER_POLICY,
  ) {}

  start(intervalMs = 1000): void {
    this.stopReconciling = everyShared(intervalMs, () => this.reconcile());
    this.gossip.on('change', () => this.reconcile());
  }

  stop(): void {
    this.stopReconciling?.();
  }

  private reconcile(): void {
    if (this.raft.raft.role !== 'leader') {
      this.leaderSince = undefined;
      return;
    }
    this.leaderSince ??= Date.now();
    const members = this.gossip.members();
    this.placeVoters(members);
    for (const member of members) this.recordNode(member);
    if (Date.now() - this.leaderSince >= UNSEEN_GRACE_MS) this.markUnseen(members);
  }

  private markUnseen(members: Member[]): void {
    const known = new Set(members.map((m) => m.id));
    for (const { id, value, version } of this.state.list('nodes')) {
      if (known.has(id) || id === this.raft.raft.id || this.inFlight.has(id)) continue;
      if (value.status !== 'ready' && value.status !== 'suspect') continue;
      this.inFlight.add(id);
      this.log.warn({ member: id }, 'node recorded up but unknown to gossip: marking it down');
      const down: NodeRecord = { ...value, status: 'down', since: Date.now() };
      this.raft
        .propose({ op: 'put', kind: 'nodes', id, value: down, ifVersion: version })
        .catch((error: Error) =>
          this.log.debug({ member: id, reason: error.message }, 'node record not written'),
        )
        .finally(() => this.inFlight.delete(id));
    }
  }

  private placeVoters(members: Member[]): void {
    // A removed node counts as gone for good, whatever gossip last heard of it.
    const health = new Map<string, Health>(
      members.map((m) => [
        m.id,
        {
          status: this.isRemoved(m.id) ? 'left' : m.status,
          since: this.isRemoved(m.id) ? 0 : m.since,
          caughtUp: this.raft.raft.caughtUp(m.id),
          workerOnly: this.state.get('nodes', m.id)?.value.workerOnly === true,
          holdsKey: this.holdsKey(m),
        },
      ]),
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

  private isRemoved(id: string): boolean {
    return this.state.get('nodes', id)?.value.status === 'removed';
  }

  private recordNode(member: Member): void {
    const current = this.state.get('nodes', member.id);
    if (current?.value.status === 'removed') return;
    // Only a join records a node; the leader records itself (the first node joined no one).
    const base =
      current?.value ?? (member.id === this.raft.raft.id ? selfRecord(member) : undefined);
    if (!base) return;
    const wanted = record(member, base);
    if ((current && isDeepStrictEqual(current.value, wanted)) || this.inFlight.has(member.id))
      return;
    this.inFlight.add(member.id);
    // Conditional, so a drain or label written meanwhile is never overwritten with the old value.
    const ifVersion = current?.version ?? 0;
    this.raft
      .propose({ op: 'put', kind: 'nodes', id: member.id, value: wanted, ifVersion })
      .catch((error: Error) =>
        this.log.debug({ member: member.id, reason: error.message }, 'node record not written'),
      )
      .finally(() => this.inFlight.delete(member.id));
  }
}
