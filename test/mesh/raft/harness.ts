import { DEFAULT_RAFT_CONFIG, Raft } from '../../../mesh/raft/raft.js';
import type { Entry, Membership, Message, NodeId, ReadState } from '../../../mesh/raft/types.js';
import { seededRandom } from '../../../mesh/random.js';

/** The agent's timing, but a leader's every tick is a heartbeat round: scenarios count rounds. */
// The traces count ticks against these numbers (written when the defaults were so).
const CONFIG = { ...DEFAULT_RAFT_CONFIG, electionTicks: 10, heartbeatTicks: 1 };

/**
 * Raft nodes wired directly together: messages are delivered in order until none are left, and
 * links can be cut. Small, exact scenarios; the randomized storm lives in test/sim/raft-sim.ts.
 */
export class Cluster {
  readonly nodes = new Map<NodeId, Raft>();
  readonly applied = new Map<NodeId, Entry[]>();
  readonly reads = new Map<NodeId, ReadState[]>();
  /** Every message sent, in order, and whether a cut link dropped it. */
  readonly trace: Array<{ message: Message; dropped: boolean }> = [];
  private readonly cut = new Set<string>();
  private queue: Message[] = [];

  constructor(ids: NodeId[], membership: Membership = { voters: ids, learners: [] }) {
    for (const [i, id] of ids.entries()) this.add(id, membership, i);
  }

  add(
    id: NodeId,
    membership: Membership = { voters: [], learners: [] },
    seed = this.nodes.size,
  ): Raft {
    const raft = new Raft({
      id,
      config: CONFIG,
      random: seededRandom(seed + 1),
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: { index: 0, term: 0, membership, data: null },
      entries: [],
    });
    this.nodes.set(id, raft);
    this.applied.set(id, []);
    this.reads.set(id, []);
    return raft;
  }

  /**
   * The node starts again from the first `kept` entries of its log, as after a crash that lost
   * the rest (a learner's torn log, or entries never made durable).
   */
  restartWithPrefix(id: NodeId, kept: number): Raft {
    const before = this.node(id);
    const entries = before.log.slice(1, kept);
    const raft = new Raft({
      id,
      config: CONFIG,
      random: seededRandom(this.nodes.size + 100),
      hardState: { term: before.term, vote: null, commit: Math.min(before.log.committed, kept) },
      snapshot: { index: 0, term: 0, membership: before.log.membershipAt(0), data: null },
      entries,
    });
    this.nodes.set(id, raft);
    this.applied.set(id, []);
    return raft;
  }

  /** Every message delivered, in order. */
  get delivered(): Message[] {
    return this.trace.filter((sent) => !sent.dropped).map((sent) => sent.message);
  }

  node(id: NodeId): Raft {
    return this.nodes.get(id) as Raft;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /**
   * Makes the node campaign now, as leadership transfer does: it skips pre-vote and the others'
   * leader lease, but not Raft's up-to-date check.
   */
  elect(id: NodeId): void {
    const raft = this.node(id);
    raft.step({ from: id, to: id, term: raft.term, type: 'timeout-now' });
    this.settle();
  }

  /** Heartbeat round from the leader(s). */
  heartbeat(): void {
    for (const raft of this.nodes.values()) if (raft.role === 'leader') raft.tick();
    this.settle();
  }

  settle(): void {
    for (let rounds = 0; rounds < 10_000; rounds++) {
      for (const [id, raft] of this.nodes) this.collect(id, raft);
      const message = this.queue.shift();
      if (!message) return;
      const dropped = this.cut.has(`${message.from}>${message.to}`);
      this.trace.push({ message, dropped });
      if (dropped) continue;
      this.nodes.get(message.to)?.step(message);
    }
    throw new Error('messages did not settle');
  }

  leader(): Raft | undefined {
    return [...this.nodes.values()].find((r) => r.role === 'leader');
  }

  private collect(id: NodeId, raft: Raft): void {
    const ready = raft.ready();
    this.queue.push(...ready.messages);
    this.applied.get(id)?.push(...ready.committed);
    this.reads.get(id)?.push(...ready.reads);
  }
}

export function commands(entries: Entry[]): unknown[] {
  return entries.filter((e) => e.kind === 'command').map((e) => e.data);
}
