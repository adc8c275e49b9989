import type { Random } from '../random.js';
import { RaftLog } from './log.js';
import { newProgress, type Progress } from './progress.js';
import { committedIndex, hasMajority, voteResult } from './quorum.js';
import type {
  Entry,
  HardState,
  Membership,
  Message,
  NodeId,
  ReadState,
  Ready,
  Role,
  Snapshot,
} from './types.js';

export interface RaftConfig {
  /** Ticks without a leader before a follower campaigns (randomized up to twice this). */
  electionTicks: number;
  heartbeatTicks: number;
  maxEntriesPerMessage: number;
  /** An append holds entries up to about this size (at least one, however large). */
  maxBytesPerMessage: number;
}

/**
 * With a 100 ms tick: elections after 1-2 s of silence, as etcd's; heartbeats every 300 ms, so a
 * follower hears at least three within the shortest election timeout, at a third of etcd's idle
 * traffic (each heartbeat is a message and an answer to every follower, over TLS; Swarm sends
 * one a second).
 */
export const DEFAULT_RAFT_CONFIG: RaftConfig = {
  electionTicks: 7,
  heartbeatTicks: 2,
  maxEntriesPerMessage: 64,
  // A follower far behind gets its entries in messages of a size the transport carries at once,
  // whatever large deploys it missed.
  maxBytesPerMessage: 1024 * 1024,
};

/** A pre-vote nobody answered is asked again after this many ticks, up to twice as many. */
const PRE_VOTE_RETRY_TICKS = 2;

export interface RaftOptions {
  id: NodeId;
  config: RaftConfig;
  random: Random;
  /** What storage holds: a brand-new node has term 0, no entries and a snapshot at index 0. */
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

export type RaftErrorCode =
  | 'not-leader'
  | 'forbidden'
  /** A write was proposed but not confirmed: it may or may not be applied. */
  | 'unconfirmed'
  | 'not-ready'
  | 'transferring'
  | 'membership-pending'
  | 'invalid';

export class RaftError extends Error {
  override name = 'RaftError';
  constructor(
    readonly code: RaftErrorCode,
    message: string,
    readonly leader: NodeId | null = null,
  ) {
    super(message);
  }
}

/** The message of type T, whichever union member carries it (some carry two types). */
type MessageOf<T, M = Message> = M extends { type: infer U } ? (T extends U ? M : never) : never;
type Body<T extends Message['type']> = Omit<MessageOf<T>, 'from' | 'to' | 'term' | 'type'>;

/**
 * Raft as a pure state machine, in the manner of etcd-io/raft: tick() and step() go in, a Ready
 * comes out of ready(). Pre-vote and check-quorum keep a partitioned node from disrupting the
 * cluster; learners receive the log without voting; membership changes one server at a time.
 */
export class Raft {
  readonly id: NodeId;
  readonly log: RaftLog;
  role: Role = 'follower';
  term: number;
  vote: NodeId | null;
  leader: NodeId | null = null;
  private readonly config: RaftConfig;
  private readonly random: Random;
  private snapshot: Snapshot;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private electionTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private transferee: NodeId | null = null;
  private committedInTerm = false;
  private seq = 0;
  private pendingReads: Array<ReadState & { seq: number }> = [];
  private outbox: Message[] = [];
  private reads: ReadState[] = [];
  private received: Snapshot | undefined;
  private persisted: HardState;
  /** What the last ready() moved on from, for retake(). */
  private taken:
    | { persisted: HardState; unstableFrom: number; applied: number; snapshot: Snapshot }
    | undefined;
  /** Estimated sizes of entries already measured for an append. */
  private readonly entrySizes = new WeakMap<Entry, number>();

  constructor(options: RaftOptions) {
    this.id = options.id;
    this.config = options.config;
    this.random = options.random;
    this.snapshot = options.snapshot;
    this.term = options.hardState.term;
    this.vote = options.hardState.vote;
    this.persisted = { ...options.hardState };
    this.log = new RaftLog(options.snapshot, options.entries, options.hardState.commit);
    this.resetElectionTimeout();
  }

  get membership(): Membership {
    return this.log.membership;
  }

  /** The latest snapshot: what a follower too far behind is sent. */
  get currentSnapshot(): Snapshot {
    return this.snapshot;
  }

  tick(): void {
    this.electionElapsed += 1;
    if (this.role === 'leader') {
      this.heartbeatElapsed += 1;
      if (this.electionElapsed >= this.config.electionTicks) {
        this.electionElapsed = 0;
        this.checkQuorum();
      }
      if (this.role === 'leader' && this.heartbeatElapsed >= this.config.heartbeatTicks) {
        this.heartbeatElapsed = 0;
        this.broadcast();
      }
      return;
    }
    if (this.promotable && this.electionElapsed >= this.electionTimeout) this.campaign('pre');
  }

  /** Appends a command; it is committed once a quorum holds it (watch ready().committed). */
  propose(data: unknown): { index: number; term: number } {
    this.requireLeader();
    if (this.transferee)
      throw new RaftError('transferring', `leadership is moving to ${this.transferee}`);
    return this.appendAndReplicate('command', data);
  }

  /** Changes membership by at most one voter; effective as soon as it is in the log. */
  proposeMembership(next: Membership): { index: number; term: number } {
    this.requireLeader();
    const pending = this.log.memberships.at(-1)?.index ?? 0;
    if (!this.committedInTerm || pending > this.log.committed) {
      throw new RaftError(
        'membership-pending',
        'a membership change is still being committed; retry',
      );
    }
    const before = new Set(this.membership.voters);
    const after = new Set(next.voters);
    const changed =
      [...before].filter((v) => !after.has(v)).length +
      [...after].filter((v) => !before.has(v)).length;
    if (changed > 1) throw new RaftError('invalid', 'change at most one voter at a time');
    if (next.voters.length === 0)
      throw new RaftError('invalid', 'a cluster needs at least one voter');
    return this.appendAndReplicate('config', {
      voters: [...next.voters],
      learners: [...next.learners],
    });
  }

  /** Asks for a linearizable read; a ReadState with this ID comes out of ready() when it is safe. */
  readIndex(requestId: string): void {
    this.requireLeader();
    if (!this.committedInTerm)
      throw new RaftError('not-ready', 'the new leader has not committed yet; retry');
    this.pendingReads.push({ requestId, index: this.log.committed, seq: ++this.seq });
    this.broadcast(this.seq);
    this.releaseReads();
  }

  /** Leader only: whether the node's log holds everything this leader has committed. */
  caughtUp(id: NodeId): boolean {
    if (id === this.id) return true;
    return (this.progress.get(id)?.match ?? 0) >= this.log.committed;
  }

  transferLeadership(to: NodeId): void {
    this.requireLeader();
    if (to === this.id) return;
    if (!this.membership.voters.includes(to))
      throw new RaftError('invalid', `${to} is not a voter`);
    this.transferee = to;
    this.electionElapsed = 0; // the transfer is abandoned after an election timeout
    const p = this.progress.get(to);
    if (p && p.match === this.log.lastIndex) this.send(to, 'timeout-now', {});
    else this.sendAppend(to);
  }

  /** Records a snapshot of the state machine at `index` (applied) and drops the log before it. */
  compact(index: number, data: unknown): Snapshot {
    if (index > this.log.applied)
      throw new RaftError('invalid', `cannot snapshot ${index}, applied ${this.log.applied}`);
    this.snapshot = {
      index,
      term: this.log.term(index) ?? this.snapshot.term,
      membership: this.log.membershipAt(index),
      data,
    };
    this.log.compact(index);
    return this.snapshot;
  }

  step(m: Message): void {
    if (m.term > this.term) {
      const asksForVote = m.type === 'prevote' || m.type === 'vote';
      const inLease = this.leader !== null && this.electionElapsed < this.config.electionTicks;
      // Leader stickiness: while we hear from a leader, a stray candidate cannot depose it.
      if (asksForVote && inLease && !m.transfer) return;
      const futureTermGrant = m.type === 'prevote-resp' && !m.reject;
      if (m.type !== 'prevote' && !futureTermGrant) {
        this.becomeFollower(m.term, m.type === 'append' || m.type === 'snapshot' ? m.from : null);
      }
    } else if (m.term < this.term) {
      // A stale leader learns our term and steps down; a stale pre-candidate learns it lost.
      if (m.type === 'append' || m.type === 'snapshot') {
        this.send(m.from, 'append-resp', {
          reject: true,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
          seq: 0,
        });
      } else if (m.type === 'prevote') {
        this.send(m.from, 'prevote-resp', { reject: true });
      }
      return;
    }
    switch (m.type) {
      case 'prevote':
      case 'vote':
        this.answerVote(m);
        return;
      case 'prevote-resp':
      case 'vote-resp':
        this.tally(m);
        return;
      case 'append':
        this.followLeader(m.from);
        this.handleAppend(m);
        return;
      case 'snapshot':
        this.followLeader(m.from);
        this.handleSnapshot(m);
        return;
      case 'append-resp':
        if (this.role === 'leader') this.handleAppendResponse(m);
        return;
      case 'timeout-now':
        if (this.promotable) this.campaign('real', true);
        return;
    }
  }

  ready(): Ready {
    this.taken = {
      persisted: this.persisted,
      unstableFrom: this.log.unstableFrom,
      applied: this.log.applied,
      snapshot: this.snapshot,
    };
    const ready: Ready = { entries: [], messages: this.outbox, committed: [], reads: this.reads };
    this.outbox = [];
    this.reads = [];
    const hardState = { term: this.term, vote: this.vote, commit: this.log.committed };
    const p = this.persisted;
    if (hardState.term !== p.term || hardState.vote !== p.vote || hardState.commit !== p.commit) {
      ready.hardState = hardState;
      this.persisted = hardState;
    }
    if (this.received) {
      ready.snapshot = this.received;
      this.snapshot = this.received;
      this.received = undefined;
    }
    const from = Math.max(this.log.unstableFrom, this.log.base.index + 1);
    if (from <= this.log.lastIndex) ready.entries = this.log.slice(from, this.log.lastIndex);
    this.log.unstableFrom = this.log.lastIndex + 1;
    if (this.log.committed > this.log.applied) {
      ready.committed = this.log.slice(this.log.applied + 1, this.log.committed);
      this.log.applied = this.log.committed;
    }
    return ready;
  }

  /**
   * The Ready last taken could not be persisted: what it asked to persist (hard state, entries, a
   * snapshot received) and to apply is offered again by the next ready(). Its messages are
   * dropped, as a network may drop them: none may leave before what it persists is durable. Its
   * reads stand (each was confirmed by a quorum already).
   */
  retake(ready: Ready): void {
    const taken = this.taken;
    if (!taken) return;
    this.persisted = taken.persisted;
    this.log.unstableFrom = taken.unstableFrom;
    this.log.applied = taken.applied;
    if (ready.snapshot) {
      this.received = ready.snapshot;
      this.snapshot = taken.snapshot;
    }
    this.taken = undefined;
  }

  // ---- elections ----

  private get promotable(): boolean {
    return this.membership.voters.includes(this.id);
  }

  private resetElectionTimeout(): void {
    this.electionElapsed = 0;
    this.electionTimeout = this.config.electionTicks + this.random.int(this.config.electionTicks);
  }

  private campaign(kind: 'pre' | 'real', transfer = false): void {
    this.resetElectionTimeout();
    // A pre-vote changes nothing, so an unanswered one is asked again soon, not a whole timeout
    // later: a voter still within its leader's lease ignores it, and that lease ends at most one
    // election timeout after the leader was last heard.
    if (kind === 'pre')
      this.electionTimeout = PRE_VOTE_RETRY_TICKS + this.random.int(PRE_VOTE_RETRY_TICKS);
    this.leader = null;
    this.votes = new Map([[this.id, true]]);
    if (kind === 'pre') {
      this.role = 'pre-candidate';
    } else {
      this.role = 'candidate';
      this.term += 1;
      this.vote = this.id;
    }
    if (voteResult(this.membership.voters, this.votes) === 'won') {
      if (kind === 'pre') this.campaign('real');
      else this.becomeLeader();
      return;
    }
    const type = kind === 'pre' ? 'prevote' : 'vote';
    const term = kind === 'pre' ? this.term + 1 : this.term;
    for (const voter of this.membership.voters) {
      if (voter === this.id) continue;
      this.outbox.push({
        from: this.id,
        to: voter,
        term,
        type,
        lastIndex: this.log.lastIndex,
        lastTerm: this.log.lastTerm,
        transfer,
      });
    }
  }

  /** Raft's election restriction; overridable only so a test can prove the simulator catches its absence. */
  protected candidateIsUpToDate(lastIndex: number, lastTerm: number): boolean {
    return this.log.isUpToDate(lastIndex, lastTerm);
  }

  private answerVote(m: Extract<Message, { type: 'prevote' | 'vote' }>): void {
    const free = this.vote === m.from || (this.vote === null && this.leader === null);
    const canVote = free || (m.type === 'prevote' && m.term > this.term);
    const grant = canVote && this.candidateIsUpToDate(m.lastIndex, m.lastTerm);
    const type = m.type === 'prevote' ? 'prevote-resp' : 'vote-resp';
    if (grant && m.type === 'vote') {
      this.vote = m.from;
      this.electionElapsed = 0;
    }
    // A granted pre-vote answers in the candidate's future term; anything else in ours.
    this.outbox.push({
      from: this.id,
      to: m.from,
      term: grant ? m.term : this.term,
      type,
      reject: !grant,
    });
  }

  private tally(m: Extract<Message, { type: 'prevote-resp' | 'vote-resp' }>): void {
    const pre = m.type === 'prevote-resp';
    if (this.role !== (pre ? 'pre-candidate' : 'candidate')) return;
    if (m.term !== (pre ? this.term + 1 : this.term)) return;
    this.votes.set(m.from, !m.reject);
    const result = voteResult(this.membership.voters, this.votes);
    if (result === 'won') {
      if (pre) this.campaign('real');
      else this.becomeLeader();
    } else if (result === 'lost') {
      this.becomeFollower(this.term, null);
    }
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    if (term > this.term) {
      this.term = term;
      this.vote = null;
    }
    this.role = 'follower';
    this.leader = leader;
    this.progress.clear();
    this.transferee = null;
    this.pendingReads = [];
    this.resetElectionTimeout();
  }

  private followLeader(from: NodeId): void {
    if (this.role !== 'follower') this.becomeFollower(this.term, from);
    this.leader = from;
    this.electionElapsed = 0;
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.leader = this.id;
    this.transferee = null;
    this.committedInTerm = false;
    this.heartbeatElapsed = 0;
    this.electionElapsed = 0;
    this.progress.clear();
    this.syncProgress();
    // A no-op of our own term lets us learn (and commit) what earlier leaders left behind.
    this.appendAndReplicate('noop', null);
  }

  private checkQuorum(): void {
    const active = hasMajority(
      this.membership.voters,
      (v) => v === this.id || this.progress.get(v)?.recentActive === true,
    );
    for (const p of this.progress.values()) p.recentActive = false;
    this.transferee = null;
    if (!active) this.becomeFollower(this.term, null);
  }

  // ---- replication ----

  private requireLeader(): void {
    if (this.role !== 'leader')
      throw new RaftError('not-leader', `${this.id} is not the leader`, this.leader);
  }

  private appendAndReplicate(kind: Entry['kind'], data: unknown): { index: number; term: number } {
    const entry = this.log.append({ term: this.term, kind, data });
    if (kind === 'config') this.syncProgress();
    this.maybeCommit();
    for (const id of this.progress.keys()) this.sendAppend(id);
    return { index: entry.index, term: entry.term };
  }

  /** Tracks exactly the members of the current membership (it changes with config entries). */
  private syncProgress(): void {
    const members = new Set([...this.membership.voters, ...this.membership.learners]);
    members.delete(this.id);
    for (const id of this.progress.keys()) if (!members.has(id)) this.progress.delete(id);
    for (const id of members)
      if (!this.progress.has(id)) this.progress.set(id, newProgress(this.log.lastIndex));
  }

  private broadcast(seq = this.seq): void {
    for (const [id, p] of this.progress) {
      p.paused = false;
      this.sendAppend(id, seq);
    }
  }

  private sendAppend(to: NodeId, seq = this.seq): void {
    const p = this.progress.get(to);
    if (!p || p.paused) return;
    if (p.next <= this.log.base.index) {
      p.paused = true;
      this.send(to, 'snapshot', { snapshot: this.snapshot, seq });
      return;
    }
    const entries = this.entriesFrom(p.next);
    const last = p.next + entries.length - 1;
    this.send(to, 'append', {
      prevIndex: p.next - 1,
      prevTerm: this.log.term(p.next - 1) ?? 0,
      entries,
      commit: this.log.committed,
      seq,
    });
    p.commitSent = this.log.committed;
    if (p.probing) p.paused = true;
    else if (entries.length > 0) p.next = last + 1;
  }

  /** The entries of an append from `next`: within the count and byte budgets, but at least one. */
  private entriesFrom(next: number): Entry[] {
    const last = Math.min(this.log.lastIndex, next + this.config.maxEntriesPerMessage - 1);
    const entries = next <= last ? this.log.slice(next, last) : [];
    let bytes = 0;
    for (const [i, entry] of entries.entries()) {
      bytes += this.sizeOf(entry);
      if (i > 0 && bytes > this.config.maxBytesPerMessage) return entries.slice(0, i);
    }
    return entries;
  }

  /** An entry's size as JSON: near enough to its encoded size for a budget, and deterministic. */
  private sizeOf(entry: Entry): number {
    let size = this.entrySizes.get(entry);
    if (size === undefined) {
      size = JSON.stringify(entry.data ?? null).length;
      this.entrySizes.set(entry, size);
    }
    return size;
  }

  private handleAppend(m: Extract<Message, { type: 'append' }>): void {
    if (m.prevIndex < this.log.committed) {
      this.send(m.from, 'append-resp', {
        reject: false,
        index: this.log.committed,
        hintIndex: 0,
        hintTerm: 0,
        seq: m.seq,
      });
      return;
    }
    const lastNew = this.log.tryAppend(m.prevIndex, m.prevTerm, m.entries);
    if (lastNew === undefined) {
      const hint = this.log.conflictHint(m.prevIndex, m.prevTerm);
      this.send(m.from, 'append-resp', {
        reject: true,
        index: m.prevIndex,
        hintIndex: hint.index,
        hintTerm: hint.term,
        seq: m.seq,
      });
      return;
    }
    this.log.committed = Math.max(this.log.committed, Math.min(m.commit, lastNew));
    this.send(m.from, 'append-resp', {
      reject: false,
      index: lastNew,
      hintIndex: 0,
      hintTerm: 0,
      seq: m.seq,
    });
  }

  private handleSnapshot(m: Extract<Message, { type: 'snapshot' }>): void {
    if (m.snapshot.index > this.log.committed) {
      this.log.restore(m.snapshot);
      this.received = m.snapshot;
    }
    this.send(m.from, 'append-resp', {
      reject: false,
      index: this.log.lastIndex,
      hintIndex: 0,
      hintTerm: 0,
      seq: m.seq,
    });
  }

  private handleAppendResponse(m: Extract<Message, { type: 'append-resp' }>): void {
    const p = this.progress.get(m.from);
    // An answer that claims entries past our log answers nothing we sent.
    if (!p || m.index > this.log.lastIndex) return;
    p.recentActive = true;
    p.ackedSeq = Math.max(p.ackedSeq, m.seq);
    if (m.reject) {
      if (m.index <= p.match) {
        // At or below what the follower matched: a late or duplicated reply, unless the follower
        // says its log now ends before that match. Then its log went backwards (a learner that
        // lost a suffix, a restart from a shorter log): forget the match and find its log again.
        // A late reply taken for that costs a probe, never safety (match only ever held back
        // the commit index, which does not fall).
        if (m.hintIndex >= p.match) return;
        p.match = 0;
      }
      p.next = Math.max(p.match + 1, this.nextAfterRejection(m.hintIndex, m.hintTerm));
      p.probing = true;
      p.paused = false;
      this.sendAppend(m.from);
    } else {
      if (m.index > p.match) {
        p.match = m.index;
        p.probing = false;
      }
      p.next = Math.max(p.next, p.match + 1);
      p.paused = false;
      this.maybeCommit();
      if (this.role !== 'leader') return;
      if (this.transferee === m.from && p.match === this.log.lastIndex)
        this.send(m.from, 'timeout-now', {});
      if (p.next <= this.log.lastIndex) this.sendAppend(m.from);
      // A new commit index goes to each follower at once rather than with the next heartbeat
      // (as etcd's bcastAppend): every node's routes and DNS show a write within a round trip of
      // its commit, not up to a heartbeat later (a deploy returns once the leader's view has it).
      for (const [id, other] of this.progress)
        if (other.commitSent < this.log.committed) this.sendAppend(id);
    }
    this.releaseReads();
  }

  /** The follower's hint names its last index whose term is at most hintTerm; match our log to it. */
  private nextAfterRejection(hintIndex: number, hintTerm: number): number {
    if (hintIndex < this.log.base.index) return hintIndex + 1; // behind our snapshot: send it
    let index = Math.min(hintIndex, this.log.lastIndex);
    while (index > this.log.base.index && (this.log.term(index) ?? 0) > hintTerm) index--;
    return index + 1;
  }

  private maybeCommit(): void {
    const candidate = committedIndex(this.membership.voters, (v) =>
      v === this.id ? this.log.lastIndex : (this.progress.get(v)?.match ?? 0),
    );
    // Only entries of our own term are committed by counting; earlier ones ride along (Raft §5.4.2).
    if (candidate <= this.log.committed || this.log.term(candidate) !== this.term) return;
    this.log.committed = candidate;
    this.committedInTerm = true;
    if (!this.log.membershipAt(candidate).voters.includes(this.id) && !this.promotable) {
      this.becomeFollower(this.term, null); // we removed ourselves and that is now committed
    }
  }

  private releaseReads(): void {
    if (this.role !== 'leader' || this.pendingReads.length === 0) return;
    this.pendingReads = this.pendingReads.filter((read) => {
      const confirmed = hasMajority(
        this.membership.voters,
        (v) => v === this.id || (this.progress.get(v)?.ackedSeq ?? 0) >= read.seq,
      );
      if (!confirmed) return true;
      this.reads.push({ requestId: read.requestId, index: read.index });
      return false;
    });
  }

  private send<T extends Message['type']>(to: NodeId, type: T, body: Body<T>): void {
    this.outbox.push({ from: this.id, to, term: this.term, type, ...body } as Message);
  }
}
