import { randomInt, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Counts } from '../counts.js';
import { LimitedLog } from '../limited-log.js';
import { seededRandom } from '../random.js';
import type { Transport } from '../transport/transport.js';
import { parseRaftMessage } from './messages.js';
import {
  DEFAULT_RAFT_CONFIG,
  Raft,
  type RaftConfig,
  RaftError,
  type RaftErrorCode,
} from './raft.js';
import { roleRefusal } from './roles.js';
import { type RaftStorage, StorageWriteError } from './storage.js';
import type { Membership, Message, NodeId, ReadState, Role } from './types.js';

/** What Raft replicates into: deterministic, and able to snapshot and restore itself. */
export interface StateMachine {
  apply(index: number, data: unknown): unknown;
  snapshot(): unknown;
  restore(data: unknown): void;
}

export interface RaftNodeOptions {
  transport: Transport;
  storage: RaftStorage;
  machine: StateMachine;
  log: Logger;
  /** Where a node listens, as membership knows it. */
  addressOf: (id: NodeId) => string | undefined;
  config?: RaftConfig;
  tickMs?: number;
  /** Snapshot and compact once this many entries are applied past the last snapshot. */
  compactEvery?: number;
  /** How long a write or read may wait for the cluster. */
  timeoutMs?: number;
  /**
   * Why a command another node forwards (named by its certificate) must not be proposed, or
   * undefined when it may be. Without it, any member may propose anything.
   */
  authorize?: (sender: NodeId, command: unknown) => string | undefined;
}

/**
 * How the leader answers a forwarded write or read: its value, or why not with RaftError's code,
 * so that the node that asked can tell "retry, the leader moved" from "refused".
 */
type Settled =
  | { value: unknown; refused?: undefined }
  | { refused: { code: RaftErrorCode; message: string; leader: NodeId | null } };

async function settle(work: Promise<unknown>): Promise<Settled> {
  try {
    return { value: await work };
  } catch (error) {
    if (!(error instanceof RaftError)) throw error;
    return { refused: { code: error.code, message: error.message, leader: error.leader } };
  }
}

/** A replica that heard the leader within this (heartbeats come every tick) counts as current. */
const CURRENT_WITHIN_MS = 3000;

const RAFT_MESSAGE = 'raft';
const FORWARD_PROPOSE = 'raft.propose';
const FORWARD_READ = 'raft.read-index';

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

interface RaftNodeEvents {
  leader: [NodeId | null];
  /** A new configuration committed: its voters. */
  voters: [NodeId[]];
  /** This node, as leader, refused a write of another node: who sent it, and why. */
  refused: [{ sender: NodeId; reason: string }];
}

/** When a campaign of this node went through each stage (ms since the epoch). */
export interface Campaign {
  term: number;
  /** When this node last heard the leader it had before. */
  leaderHeardAt: number;
  preVoteAt?: number;
  voteAt?: number;
  leaderAt?: number;
  /** The first entry of its term committed: from here on it serves writes and reads. */
  committedAt?: number;
}

/**
 * Runs Raft on this node: ticks it, persists each Ready before sending its messages, applies
 * committed commands to the state machine, and answers writes and linearizable reads, forwarding
 * them to the leader when this node is not it.
 */
export class RaftNode extends EventEmitter<RaftNodeEvents> {
  readonly raft: Raft;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private readonly writes = new Map<string, Waiter<unknown>>();
  private readonly readIndexes = new Map<string, Waiter<number>>();
  private readonly appliedWaiters: Array<{ index: number } & Waiter<void>> = [];
  private lastLeader: NodeId | null = null;
  /** What became of the writes this node took as leader, and how often its leader changed. */
  readonly counts = {
    proposals: new Counts<{ outcome: 'committed' | 'unconfirmed' | 'refused' | 'failed' }>(),
    leaderChanges: new Counts<Record<string, never>>(),
  };
  /** Refused Raft messages and proposals: a line per peer and message type a minute. */
  private readonly refusals: LimitedLog;
  /** When this node last heard the leader and held all the leader had committed. */
  private leaderHeard = Date.now();
  /** Whether this run has heard the leader at all (leaderHeard starts at the start). */
  private heardLeader = false;
  private stopped = false;
  /** The role at the end of the last Ready handled, to see it change. */
  private lastRole: Role = 'follower';
  /** When this node's last campaign went through each stage (ms since the epoch). */
  private campaign: Campaign | undefined;
  /** Why Raft's log cannot be written now, while it cannot. */
  private storageFailure: StorageWriteError | undefined;

  constructor(private readonly options: RaftNodeOptions) {
    super();
    this.log = options.log;
    this.refusals = new LimitedLog(options.log, 1);
    const stored = options.storage.state;
    options.machine.restore(stored.snapshot.data);
    this.raft = new Raft({
      id: options.transport.nodeId,
      config: options.config ?? DEFAULT_RAFT_CONFIG,
      random: seededRandom(randomInt(2 ** 31)),
      hardState: stored.hardState,
      snapshot: stored.snapshot,
      entries: stored.entries,
    });
    const { transport } = options;
    transport.handle(RAFT_MESSAGE, (body, peer) => {
      if (this.stopped) return; // the transport closes after us; its last messages are moot
      let message: Message;
      try {
        message = parseRaftMessage(body, peer.nodeId, transport.nodeId);
      } catch (error) {
        this.refused(peer.nodeId, 'malformed', (error as Error).message);
        return;
      }
      const refusal = roleRefusal(message, this.raft.membership, this.raft.term);
      if (refusal) {
        this.refused(peer.nodeId, message.type, refusal, message.term);
        return;
      }
      this.raft.step(message);
      this.process();
      // In touch with the leader only once this replica holds all the leader had committed:
      // right after a heal it is still behind, and acting on what it holds would be stale.
      const current = message.type === 'append' && this.raft.log.applied >= message.commit;
      if (current && this.raft.leader === message.from) {
        this.leaderHeard = Date.now();
        this.heardLeader = true;
      }
    });
    transport.handle(FORWARD_PROPOSE, (body, peer) => settle(this.proposeFor(peer.nodeId, body)));
    transport.handle(FORWARD_READ, () =>
      settle(this.leaderReadIndex(this.options.timeoutMs ?? 5000)),
    );
  }

  private refused(peer: NodeId, type: string, reason: string, term?: number): void {
    this.refusals.warn(
      `${peer} ${type}`,
      { peer, type, ...(term !== undefined && { term, ourTerm: this.raft.term }), reason },
      'Raft message refused',
    );
  }

  get leader(): NodeId | null {
    return this.raft.leader;
  }

  get membership(): Membership {
    return this.raft.membership;
  }

  /**
   * How long this node has gone without the leader (ms): 0 on the leader itself (it steps down
   * when it loses its quorum), else since an append from the leader last found this replica
   * holding everything the leader had committed.
   */
  leaderSilenceMs(): number {
    return this.raft.role === 'leader' ? 0 : Date.now() - this.leaderHeard;
  }

  /** Whether this replica is known to hold all the leader committed, as of a moment ago. */
  isCurrent(): boolean {
    if (this.raft.role === 'leader') return true;
    return this.heardLeader && this.leaderSilenceMs() < CURRENT_WITHIN_MS;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.raft.tick();
      this.process();
    }, this.options.tickMs ?? 100);
    this.process();
  }

  /** Writes and reads waiting for their confirmation, each with a timer that will end it. */
  get waiting(): number {
    return this.writes.size + this.readIndexes.size;
  }

  /** Replicates a command and resolves with what the state machine returned for it. */
  async propose(data: unknown): Promise<unknown> {
    if (this.raft.role !== 'leader') return this.forward(FORWARD_PROPOSE, data);
    const { index, term } = this.raft.propose(data);
    const key = `${index}:${term}`;
    const result = this.wait(this.writes, key, 'write');
    result.then(
      () => this.counts.proposals.add({ outcome: 'committed' }),
      (error: RaftError) =>
        this.counts.proposals.add({
          outcome: error.code === 'unconfirmed' ? 'unconfirmed' : 'failed',
        }),
    );
    this.process();
    if (this.storageFailure) {
      // Not stored here (the entry could not be written): the proposer hears why now. The entry
      // stays in the log, offered again to the disk, and may yet be applied: hence unconfirmed.
      this.writes
        .get(key)
        ?.reject(
          new RaftError(
            'unconfirmed',
            `node ${this.options.transport.nodeId} could not store it: ${this.storageFailure.message}`,
          ),
        );
      this.writes.delete(key);
    }
    return result;
  }

  /**
   * A proposal another node forwarded: only the leader takes it (one hop, so that the sender it
   * is judged by is the node that made it), and only when the sender may write it.
   */
  private async proposeFor(sender: NodeId, data: unknown): Promise<unknown> {
    if (this.raft.role !== 'leader')
      throw new RaftError(
        'not-leader',
        'this node is no longer the leader; retry',
        this.raft.leader,
      );
    const refusal = this.options.authorize?.(sender, data);
    if (refusal) {
      this.refusals.warn(
        `${sender} propose`,
        { peer: sender, reason: refusal },
        'proposal refused',
      );
      this.counts.proposals.add({ outcome: 'refused' });
      this.emit('refused', { sender, reason: refusal });
      throw new RaftError('forbidden', refusal);
    }
    return this.propose(data);
  }

  /** Proposes a membership change (leader only). */
  changeMembership(next: Membership): void {
    this.raft.proposeMembership(next);
    this.process();
  }

  /**
   * Resolves once this replica reflects every write acknowledged before the call; rejects when
   * that cannot be confirmed within timeoutMs (no leader, no quorum, leadership changing).
   */
  async linearizableRead(timeoutMs = this.options.timeoutMs ?? 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const index =
      this.raft.role === 'leader'
        ? await this.leaderReadIndex(timeoutMs)
        : ((await this.forward(FORWARD_READ, null, timeoutMs)) as number);
    if (this.raft.log.applied >= index) return;
    await new Promise<void>((resolve, reject) => {
      const waiter = { index, resolve, reject };
      const timer = setTimeout(
        () => {
          this.appliedWaiters.splice(this.appliedWaiters.indexOf(waiter), 1);
          reject(new RaftError('not-ready', `this replica did not reach index ${index} in time`));
        },
        Math.max(0, deadline - Date.now()),
      );
      waiter.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      this.appliedWaiters.push(waiter);
    });
  }

  /** Hands leadership to another voter (on a graceful shutdown), and waits briefly for it. */
  async handOver(timeoutMs = 2000): Promise<void> {
    if (this.raft.role !== 'leader') return;
    const target = this.raft.membership.voters.find((v) => v !== this.raft.id);
    if (!target) return;
    const moved = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.once('leader', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.raft.transferLeadership(target);
    this.process();
    await moved;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    const stopped = new RaftError('not-leader', 'this node is shutting down');
    for (const waiter of [
      ...this.writes.values(),
      ...this.readIndexes.values(),
      ...this.appliedWaiters,
    ])
      waiter.reject(stopped);
    this.options.storage.close();
  }

  private leaderReadIndex(timeoutMs: number): Promise<number> {
    const requestId = randomUUID();
    this.raft.readIndex(requestId); // throws while the leader cannot serve reads yet
    const index = this.wait(this.readIndexes, requestId, 'read', timeoutMs);
    this.process();
    return index;
  }

  private async forward(
    type: string,
    body: unknown,
    timeoutMs = this.options.timeoutMs ?? 5000,
  ): Promise<unknown> {
    const leader = this.raft.leader;
    const address = leader ? this.options.addressOf(leader) : undefined;
    if (!leader || !address)
      throw new RaftError('not-leader', 'no leader is known yet; retry shortly');
    const answer = (await this.options.transport.request({ address, nodeId: leader }, type, body, {
      timeoutMs,
    })) as Settled;
    if (answer?.refused)
      throw new RaftError(answer.refused.code, answer.refused.message, answer.refused.leader);
    return answer?.value;
  }

  private wait<T>(
    table: Map<string, Waiter<T>>,
    key: string,
    what: 'write' | 'read',
    timeoutMs = this.options.timeoutMs ?? 5000,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        table.delete(key);
        // A write in the log may still commit; a read is simply not confirmed.
        const code = what === 'write' ? 'unconfirmed' : 'not-ready';
        reject(new RaftError(code, `${what} not confirmed within ${timeoutMs} ms`));
      }, timeoutMs);
      table.set(key, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /**
   * One Ready, handled in the order Raft requires: persist, send, apply. When it cannot be
   * persisted (a full or read-only disk), nothing of it is sent or applied, and it is offered
   * again at the next tick; meanwhile the state this node holds goes on being read.
   */
  private process(): void {
    if (this.stopped) return;
    const { storage, machine, transport } = this.options;
    const ready = this.raft.ready();
    try {
      if (storage.save(ready.hardState, ready.entries, ready.snapshot)) this.storageWorks();
    } catch (error) {
      if (!(error instanceof StorageWriteError)) throw error;
      this.raft.retake(ready);
      this.storageFailed(error);
      for (const read of ready.reads) this.answerRead(read);
      return;
    }
    if (ready.snapshot) machine.restore(ready.snapshot.data);
    for (const message of ready.messages) {
      const address = this.options.addressOf(message.to);
      if (!address) {
        this.log.debug({ to: message.to, type: message.type }, 'no address for Raft peer yet');
        continue;
      }
      try {
        transport.send({ address, nodeId: message.to }, RAFT_MESSAGE, message);
      } catch (error) {
        this.log.debug(
          { to: message.to, reason: (error as Error).message },
          'Raft message not sent',
        );
      }
    }
    for (const entry of ready.committed) {
      const result = entry.kind === 'command' ? machine.apply(entry.index, entry.data) : undefined;
      const key = `${entry.index}:${entry.term}`;
      this.writes.get(key)?.resolve(result);
      this.writes.delete(key);
      if (entry.kind === 'config') this.emit('voters', [...(entry.data as Membership).voters]);
    }
    for (const read of ready.reads) this.answerRead(read);
    this.releaseApplied();
    this.noticeCampaign();
    this.noticeLeader();
    this.maybeCompact();
  }

  /** Writing Raft's log failed: said once, with what to do, until it works again. */
  private storageFailed(error: StorageWriteError): void {
    if (this.storageFailure) return;
    this.storageFailure = error;
    this.log.error(
      { dataDir: error.dir, code: error.code, reason: error.message },
      "Raft's log cannot be written: this node takes no write until it can (free space in its data dir, or make it writable); DNS, the proxy and reads go on",
    );
  }

  private storageWorks(): void {
    if (!this.storageFailure) return;
    this.log.info({ dataDir: this.storageFailure.dir }, "Raft's log can be written again");
    this.storageFailure = undefined;
  }

  private answerRead(read: ReadState): void {
    this.readIndexes.get(read.requestId)?.resolve(read.index);
    this.readIndexes.delete(read.requestId);
  }

  private releaseApplied(): void {
    const applied = this.raft.log.applied;
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      const waiter = this.appliedWaiters[i] as { index: number } & Waiter<void>;
      if (waiter.index > applied) continue;
      this.appliedWaiters.splice(i, 1);
      waiter.resolve();
    }
  }

  /**
   * The stages of this node's latest campaign, for reading how long an election took and where:
   * since the leader was last heard, the pre-vote, the vote, leading, and the first entry of its
   * term committed (only then can it serve writes and reads).
   */
  get lastCampaign(): Campaign | undefined {
    return this.campaign;
  }

  private noticeCampaign(): void {
    const role = this.raft.role;
    const now = Date.now();
    if (role !== this.lastRole) {
      // A campaign starts with a pre-vote, or with a vote straight away (leadership handed over).
      if (role === 'pre-candidate' || (role === 'candidate' && this.lastRole === 'follower'))
        this.campaign = { term: this.raft.term, leaderHeardAt: this.leaderHeard };
      if (this.campaign) {
        if (role === 'pre-candidate') this.campaign.preVoteAt = now;
        if (role === 'candidate') this.campaign.voteAt = now;
        if (role === 'leader') this.campaign.leaderAt = now;
        this.campaign.term = this.raft.term;
      }
      this.lastRole = role;
    }
    const { log, term } = this.raft;
    if (
      role === 'leader' &&
      this.campaign &&
      !this.campaign.committedAt &&
      log.term(log.committed) === term
    )
      this.campaign.committedAt = now;
  }

  private noticeLeader(): void {
    const leader = this.raft.leader;
    if (leader === this.lastLeader) return;
    this.lastLeader = leader;
    this.counts.leaderChanges.add({});
    this.log.info({ leader, term: this.raft.term, role: this.raft.role }, 'raft leader changed');
    if (this.raft.role !== 'leader') {
      // Writes we proposed as leader may still commit under the next leader, or may not.
      const lost = new RaftError(
        'unconfirmed',
        'leadership changed before the write was confirmed; it may or may not apply',
      );
      for (const waiter of this.writes.values()) waiter.reject(lost);
      this.writes.clear();
      // Reads we were confirming as leader never will be: fail them now rather than at timeout.
      const moved = new RaftError('not-leader', 'leadership changed during the read; retry');
      for (const waiter of this.readIndexes.values()) waiter.reject(moved);
      this.readIndexes.clear();
    }
    this.emit('leader', leader);
  }

  private maybeCompact(): void {
    const { storage, machine } = this.options;
    const applied = this.raft.log.applied;
    if (applied - storage.snapshotIndex < (this.options.compactEvery ?? 1000)) return;
    try {
      storage.saveSnapshot(this.raft.compact(applied, machine.snapshot()));
    } catch (error) {
      // The log on disk stays whole and is read right: compaction is tried again later.
      if (!(error instanceof StorageWriteError)) throw error;
      this.refusals.warn(
        'compaction',
        { dataDir: error.dir, code: error.code, reason: error.message },
        "Raft's log could not be compacted: it grows until it can",
      );
    }
  }
}
