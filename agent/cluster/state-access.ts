import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { RaftNode } from '../../mesh/raft/node.js';
import { RaftError } from '../../mesh/raft/raft.js';
import type { ClusterState, Outcome, Write } from '../../mesh/state/cluster-state.js';
import type { Kind } from '../../mesh/state/kinds.js';
import { hostOf } from '../../mesh/transport/address.js';
import { TransportError } from '../../mesh/transport/errors.js';
import { ConflictError, ForbiddenError, UnavailableError, UnknownOutcomeError } from '../errors.js';

// A person is waiting: while an election settles, a write waits for the leader this long.
const LEADER_WAIT_MS = 5000;
// ... and a read waits this long for the leader to confirm this replica is current.
const FRESH_READ_MS = 2000;
// Writes race the orchestrator's and nodes' reports; a conditional write that lost is retried.
const ATTEMPTS = 5;

/**
 * The replicated state as operator actions use it: reads from this node's replica (confirmed
 * current when asked), and writes through the leader.
 */
export class StateAccess {
  constructor(
    readonly state: ClusterState,
    private readonly raft: RaftNode,
    private readonly log: Logger,
  ) {}

  /**
   * Proposes through the leader, waiting out a moment without one (start-up, an election). A
   * failure says whether the write is known not to have happened (nothing was sent, or it was
   * refused) or may still happen (sent, not confirmed): a client told "failed" can rely on it.
   */
  async propose(command: unknown): Promise<unknown> {
    const deadline = Date.now() + LEADER_WAIT_MS;
    for (;;) {
      try {
        return await this.raft.propose(command);
      } catch (error) {
        const code = (error as RaftError | TransportError).code;
        if (error instanceof RaftError && code === 'forbidden')
          throw new ForbiddenError(error.message);
        if (code === 'unconfirmed' || code === 'timeout' || code === 'closed')
          throw new UnknownOutcomeError(
            `the write reached the leader but was not confirmed (${(error as Error).message}): it may or may not have been applied; look (mesh ls, mesh ps, mesh node inspect) before trying again`,
          );
        // No leader, or one that cannot be reached (it may have just died: an election follows).
        const leaderless =
          (error instanceof RaftError && code === 'not-leader') || error instanceof TransportError;
        if (leaderless && Date.now() <= deadline) {
          await sleep(100);
          continue;
        }
        if (leaderless || error instanceof TransportError)
          throw new UnavailableError(`the write was not applied: ${(error as Error).message}`);
        throw error;
      }
    }
  }

  /** The Raft voters: the cluster's managers. */
  get voters(): readonly string[] {
    return this.raft.membership.voters;
  }

  /** Creates an object that must not exist yet; refuses with the reason when it cannot. */
  async create(kind: Kind, id: string, value: unknown): Promise<void> {
    const outcome = (await this.propose({ op: 'put', kind, id, value, ifVersion: 0 })) as Outcome;
    if (!outcome.ok) throw new ConflictError(outcome.reason);
  }

  /**
   * Retries a conditional batch built from the state as it is now, until it applies. An operator
   * action: only a manager (a Raft voter) may change desired state; the leader checks it too.
   */
  async writeConditionally(build: () => Write[]): Promise<void> {
    this.requireManager();
    let reason = '';
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const writes = build();
      if (writes.length === 0) return;
      const outcome = (await this.propose({ op: 'batch', writes })) as Outcome;
      if (outcome.ok) return;
      reason = outcome.reason;
    }
    throw new ConflictError(`the cluster kept changing under this write: ${reason}`);
  }

  /** Refuses, naming the managers, unless this node is one (a Raft voter). */
  requireManager(): void {
    const { voters } = this.raft.membership;
    const self = this.raft.raft.id;
    if (voters.includes(self)) return;
    const managers = voters.map((id) => {
      const address = this.state.get('nodes', id)?.value.address;
      return address ? `${id} (${hostOf(address)})` : id;
    });
    throw new ForbiddenError(
      `node ${self} is a worker: desired state changes on a manager (${managers.join(', ') || 'none known yet'}); run the command there`,
    );
  }

  /**
   * Waits (a couple of seconds at most) until this replica holds every write the leader had
   * acknowledged (ReadIndex); refuses when that cannot be confirmed, rather than answer from a
   * replica that may be behind.
   */
  async current(): Promise<void> {
    try {
      await this.raft.linearizableRead(FRESH_READ_MS);
    } catch (error) {
      throw new UnavailableError(
        `this node cannot confirm that its copy of the cluster state is current (${(error as Error).message}): no leader is reachable, or this node is behind. Try again, or ask another node`,
      );
    }
  }

  /** As current(), for views worth showing even when stale: whether the replica was confirmed. */
  async caughtUp(): Promise<boolean> {
    try {
      await this.current();
      return true;
    } catch (error) {
      this.log.debug({ reason: (error as Error).message }, 'answered from the local replica');
      return false;
    }
  }
}
