import type { Logger } from 'pino';
import type { RaftNode } from '../mesh/raft/node.js';
import { RaftError } from '../mesh/raft/raft.js';
import type { ClusterState, Outcome, Write } from '../mesh/state/cluster-state.js';
import { ConflictError, UnavailableError } from './errors.js';

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

  /** Proposes through the leader, waiting out a moment without one (start-up, an election). */
  async propose(command: unknown): Promise<unknown> {
    const deadline = Date.now() + LEADER_WAIT_MS;
    for (;;) {
      try {
        return await this.raft.propose(command);
      } catch (error) {
        const leaderless = error instanceof RaftError && error.code === 'not-leader';
        if (!leaderless || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Retries a conditional batch built from the state as it is now, until it applies. */
  async writeConditionally(build: () => Write[]): Promise<void> {
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
