import { createHash } from 'node:crypto';
import { DEFAULT_RAFT_CONFIG, Raft, RaftError, type RaftOptions } from '../../mesh/raft/raft.js';
import { roleRefusal } from '../../mesh/raft/roles.js';
import type {
  Entry,
  HardState,
  Membership,
  Message,
  NodeId,
  Snapshot,
} from '../../mesh/raft/types.js';
import { type Random, seededRandom } from '../../mesh/random.js';
import { EventLoop } from './events.js';
import type { Operation } from './linearizability.js';
import { SimNetwork } from './network.js';

export interface RaftSimOptions {
  seed: number;
  nodes: number;
  /** Simulated milliseconds of faults and client load. */
  durationMs: number;
  /** A Raft with a deliberately broken rule, to show the checks can fail. */
  factory?: (options: RaftOptions) => Raft;
  /**
   * The learner also misbehaves: it sends the voters Raft messages of every type, made up, in
   * terms above theirs, with entries and snapshots of its own writing.
   */
  adversary?: boolean;
  /** Whether receivers check the sender's role first (roles.ts), as the agent does; default on. */
  roleCheck?: boolean;
}

/** What the adversary writes: no node may ever apply it. */
const FORGED = 'forged';

const TICK_MS = 100;
const CLIENTS = 3;
const KEYS = ['a', 'b'];
const CLIENT_TIMEOUT_MS = 3000;
const COMPACT_EVERY = 24;
// After the calm, every node must hold what the leader had committed within this long.
const CATCH_UP_MS = 3000;

interface Command {
  key: string;
  value: string;
}

/** What a node has on disk: all that survives a crash. */
interface Storage {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
  /** Hash chain over the persisted log: equal (index, term) must mean equal prefixes. */
  chain: Map<number, string>;
}

interface SimNode {
  id: NodeId;
  raft: Raft;
  storage: Storage;
  kv: Map<string, string>;
  up: boolean;
  life: number;
  /** Client writes waiting to be applied here, by "index:term". */
  writes: Map<string, () => void>;
  /** Reads confirmed by ReadIndex, waiting for the state machine to catch up. */
  reads: Array<{ requestId: string; index: number }>;
  readWaiters: Map<string, (value: string | null) => void>;
}

interface SnapshotData {
  kv: Array<[string, string]>;
  chain: string;
}

function link(previous: string, entry: Entry): string {
  return createHash('sha256')
    .update(`${previous}|${entry.term}|${entry.kind}|${JSON.stringify(entry.data)}`)
    .digest('hex')
    .slice(0, 24);
}

export interface RaftSimReport {
  steps: number;
  violations: string[];
  elections: number;
  committed: number;
  operations: number;
  unknownOutcomes: number;
  snapshotsInstalled: number;
  /** Messages receivers refused for their sender's role. */
  refused: number;
  history: Operation[];
}

/**
 * A Raft cluster of voters and one learner under a seeded storm: partitions, loss, duplication,
 * reordering, crashes (some of them losing the Ready that was being written; the learner's losing
 * a suffix of its log, as a damaged log it may discard) and restarts from what was persisted.
 * Safety is checked on every step, and at the end that every node caught up with the leader;
 * clients record a history for the linearizability check.
 */
export class RaftSim {
  readonly loop = new EventLoop();
  readonly network: SimNetwork;
  /** Clients speak over connections (TCP): latency and loss, but no duplicates and no partitions. */
  private readonly clientNetwork: SimNetwork;
  readonly random: Random;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly violations: string[] = [];
  readonly history: Operation[] = [];
  /** The voters, then the learner. */
  private readonly ids: NodeId[];
  private readonly learner: NodeId = 'l1';
  private readonly leaders = new Map<number, NodeId>();
  private readonly committedChain = new Map<number, string>();
  private readonly appliedChain = new Map<number, string>();
  private readonly entryChain = new Map<string, string>();
  private steps = 0;
  private elections = 0;
  private snapshotsInstalled = 0;
  private refused = 0;
  private nextRequest = 0;
  private lossyCrashes = false;
  private clientsStopped = false;
  private readonly inFlight = new Set<Operation>();

  constructor(private readonly options: RaftSimOptions) {
    this.random = seededRandom(options.seed);
    this.network = new SimNetwork(this.loop, {
      seed: options.seed ^ 0x9e3779b9,
      latencyMs: [1, 1 + this.random.int(30)],
      loss: this.random.next() * 0.1,
      duplicate: this.random.next() * 0.05,
    });
    this.clientNetwork = new SimNetwork(this.loop, {
      seed: options.seed ^ 0x51ed,
      latencyMs: [1, 10],
      loss: 0.01,
    });
    const voters = Array.from({ length: options.nodes }, (_, i) => `r${i + 1}`);
    this.ids = [...voters, this.learner];
    const membership = { voters, learners: [this.learner] };
    for (const id of this.ids) {
      const storage: Storage = {
        hardState: { term: 0, vote: null, commit: 0 },
        snapshot: {
          index: 0,
          term: 0,
          membership,
          data: { kv: [], chain: '' } satisfies SnapshotData,
        },
        entries: [],
        chain: new Map([[0, '']]),
      };
      this.boot(id, storage, 0);
    }
  }

  run(): RaftSimReport {
    const { durationMs } = this.options;
    this.lossyCrashes = this.random.next() < 0.5;
    for (let c = 0; c < CLIENTS; c++) this.loop.at(this.random.int(500), () => this.clientStep(c));
    this.scheduleFaults(durationMs);
    if (this.options.adversary) this.loop.at(200, () => this.forge(durationMs));
    const broken = () => this.violations.length > 0;
    this.loop.run(durationMs, broken);
    // Calm: heal, restart everyone, and let the clients' last operations settle.
    this.network.heal();
    for (const node of this.nodes.values())
      if (!node.up) this.boot(node.id, node.storage, node.life);
    if (!broken()) this.loop.run(durationMs + 15_000, broken);
    if (!broken()) this.checkCaughtUp(durationMs + 15_000);
    // Writes still in flight when the run ends may have taken effect: open-ended, like timeouts.
    for (const op of this.inFlight) if (op.kind === 'write') this.history.push(op);
    const unknown = this.history.filter((op) => op.returnedAt === Number.POSITIVE_INFINITY).length;
    return {
      steps: this.steps,
      violations: this.violations,
      elections: this.elections,
      committed: this.committedChain.size,
      operations: this.history.length,
      unknownOutcomes: unknown,
      snapshotsInstalled: this.snapshotsInstalled,
      refused: this.refused,
      history: this.history,
    };
  }

  // ---- nodes ----

  private boot(id: NodeId, storage: Storage, previousLife: number): void {
    const options: RaftOptions = {
      id,
      config: DEFAULT_RAFT_CONFIG,
      random: seededRandom((this.options.seed * 31 + id.charCodeAt(1) * 7 + previousLife) >>> 0),
      hardState: { ...storage.hardState },
      snapshot: storage.snapshot,
      entries: [...storage.entries],
    };
    const raft = this.options.factory ? this.options.factory(options) : new Raft(options);
    const data = storage.snapshot.data as SnapshotData;
    const node: SimNode = {
      id,
      raft,
      storage,
      kv: new Map(data.kv),
      up: true,
      life: previousLife + 1,
      writes: new Map(),
      reads: [],
      readWaiters: new Map(),
    };
    this.nodes.set(id, node);
    const life = node.life;
    const tick = () => {
      if (!node.up || node.life !== life) return;
      node.raft.tick();
      this.handleReady(node);
      this.loop.at(this.loop.now + TICK_MS, tick);
    };
    this.loop.at(this.loop.now + this.random.int(TICK_MS), tick);
  }

  /** Boots the node again from its storage, unless it is already running. */
  private restart(id: NodeId): void {
    const node = this.nodes.get(id) as SimNode;
    if (!node.up) this.boot(id, node.storage, node.life);
  }

  private crash(node: SimNode): void {
    node.up = false;
    node.life += 1;
  }

  private deliver(message: Message): void {
    const node = this.nodes.get(message.to);
    if (!node?.up) return;
    const { raft } = node;
    if (this.options.roleCheck !== false && roleRefusal(message, raft.membership, raft.term)) {
      this.refused += 1;
      return;
    }
    raft.step(message);
    this.handleReady(node);
  }

  private handleReady(node: SimNode): void {
    this.steps += 1;
    const wasLeader = this.leaders.get(node.raft.term) === node.id;
    const ready = node.raft.ready();
    // A crash while this Ready is being written: nothing of it reaches the disk or the network.
    if (this.lossyCrashes && this.random.next() < 0.002) {
      this.crash(node);
      return;
    }
    this.persist(node, ready.hardState, ready.snapshot, ready.entries);
    for (const message of ready.messages) {
      this.network.send(message.from, message.to, () => this.deliver(message));
    }
    if (ready.snapshot) this.install(node, ready.snapshot);
    for (const entry of ready.committed) this.apply(node, entry);
    for (const read of ready.reads) node.reads.push(read);
    this.serveReads(node);
    this.checkLeader(node, wasLeader);
    this.maybeCompact(node);
  }

  private persist(
    node: SimNode,
    hardState: HardState | undefined,
    snapshot: Snapshot | undefined,
    entries: Entry[],
  ): void {
    const s = node.storage;
    if (snapshot) {
      s.snapshot = snapshot;
      s.entries = [];
      s.chain = new Map([[snapshot.index, (snapshot.data as SnapshotData).chain]]);
    }
    if (entries.length > 0) {
      const first = (entries[0] as Entry).index;
      s.entries = s.entries.filter((e) => e.index < first);
      for (const index of [...s.chain.keys()]) if (index >= first) s.chain.delete(index);
      for (const entry of entries) {
        s.entries.push(entry);
        const chain = link(s.chain.get(entry.index - 1) ?? '?', entry);
        s.chain.set(entry.index, chain);
        this.checkLogMatching(node, entry, chain);
      }
    }
    if (hardState) {
      if (hardState.commit < s.hardState.commit) {
        this.violate(`${node.id} persisted commit ${hardState.commit} below ${s.hardState.commit}`);
      }
      if (hardState.term < s.hardState.term) this.violate(`${node.id} persisted term going back`);
      s.hardState = hardState;
      for (let i = Math.max(s.snapshot.index + 1, 1); i <= hardState.commit; i++) {
        const chain = s.chain.get(i);
        if (chain === undefined) continue;
        const known = this.committedChain.get(i);
        if (known === undefined) this.committedChain.set(i, chain);
        else if (known !== chain) this.violate(`committed entry ${i} differs at ${node.id}`);
      }
    }
  }

  // ---- the invariants ----

  /**
   * Liveness once all is well again: every node gets what the leader had committed, also a learner
   * that comes back at once with a shorter log into a cluster gone quiet (where no new entry
   * makes the leader look again at what it believed the learner matched).
   */
  private checkCaughtUp(now: number): void {
    this.lossyCrashes = false;
    this.clientsStopped = true;
    this.loseSuffix(this.nodes.get(this.learner) as SimNode);
    for (const node of this.nodes.values())
      if (!node.up) this.boot(node.id, node.storage, node.life);
    const leader = [...this.nodes.values()].find((n) => n.up && n.raft.role === 'leader');
    if (!leader) return;
    const target = leader.raft.log.committed;
    this.loop.run(now + CATCH_UP_MS, () => this.violations.length > 0);
    // A learner that lies about its log only keeps itself behind.
    const honest = [...this.nodes.values()].filter(
      (n) => !(this.options.adversary && n.id === this.learner),
    );
    for (const node of honest)
      if (node.raft.log.committed < target)
        this.violate(
          `${node.id} stuck at commit ${node.raft.log.committed}, ${CATCH_UP_MS} ms after the leader had ${target}`,
        );
  }

  private violate(what: string): void {
    this.violations.push(`seed ${this.options.seed} at ${this.loop.now.toFixed(0)} ms: ${what}`);
  }

  /** Log matching: the same index and term mean the same entry and the same prefix. */
  private checkLogMatching(node: SimNode, entry: Entry, chain: string): void {
    const key = `${entry.index}:${entry.term}`;
    const known = this.entryChain.get(key);
    if (known === undefined) this.entryChain.set(key, chain);
    else if (known !== chain)
      this.violate(`log matching: ${node.id} holds a different log up to ${key}`);
  }

  /** Election safety (one leader per term) and leader completeness (it holds every committed entry). */
  private checkLeader(node: SimNode, wasLeader: boolean): void {
    if (node.raft.role !== 'leader' || wasLeader) return;
    const term = node.raft.term;
    const other = this.leaders.get(term);
    if (other !== undefined && other !== node.id)
      this.violate(`two leaders in term ${term}: ${other} and ${node.id}`);
    this.leaders.set(term, node.id);
    this.elections += 1;
    const s = node.storage;
    for (const [index, chain] of this.committedChain) {
      if (index <= s.snapshot.index) continue;
      if (s.chain.get(index) !== chain) {
        this.violate(
          `leader completeness: ${node.id}, leader of term ${term}, lacks committed entry ${index}`,
        );
        return;
      }
    }
  }

  /** State machine safety: every node applies the same entry at each index. */
  private apply(node: SimNode, entry: Entry): void {
    const chain = node.storage.chain.get(entry.index);
    const known = this.appliedChain.get(entry.index);
    if (chain !== undefined) {
      if (known === undefined) this.appliedChain.set(entry.index, chain);
      else if (known !== chain)
        this.violate(`${node.id} applied a different entry at ${entry.index}`);
    }
    if (entry.kind === 'command') {
      const command = entry.data as Command;
      if (command.value.startsWith(FORGED))
        this.violate(`${node.id} applied entry ${entry.index}, which the learner wrote`);
      node.kv.set(command.key, command.value);
    }
    if (entry.kind === 'config' && (entry.data as Membership).voters.includes(this.learner))
      this.violate(`${node.id} applied a configuration the learner wrote, seating itself`);
    const waiter = node.writes.get(`${entry.index}:${entry.term}`);
    node.writes.delete(`${entry.index}:${entry.term}`);
    waiter?.();
  }

  private install(node: SimNode, snapshot: Snapshot): void {
    this.snapshotsInstalled += 1;
    if ((snapshot.data as SnapshotData).chain === FORGED)
      this.violate(`${node.id} installed a snapshot the learner made`);
    node.kv = new Map((snapshot.data as SnapshotData).kv);
  }

  private maybeCompact(node: SimNode): void {
    const { raft, storage } = node;
    if (raft.log.applied - storage.snapshot.index < COMPACT_EVERY) return;
    const index = raft.log.applied;
    const chain = storage.chain.get(index);
    if (chain === undefined) return;
    const snapshot = raft.compact(index, { kv: [...node.kv], chain } satisfies SnapshotData);
    storage.snapshot = snapshot;
    storage.entries = storage.entries.filter((e) => e.index > index);
    for (const i of [...storage.chain.keys()]) if (i < index) storage.chain.delete(i);
  }

  private serveReads(node: SimNode): void {
    node.reads = node.reads.filter((read) => {
      if (node.raft.log.applied < read.index) return true;
      const waiter = node.readWaiters.get(read.requestId);
      node.readWaiters.delete(read.requestId);
      const key = read.requestId.split('/')[1] as string;
      waiter?.(node.kv.get(key) ?? null);
      return false;
    });
  }

  // ---- faults ----

  private scheduleFaults(durationMs: number): void {
    let at = 1000;
    while (at < durationMs) {
      const fault = this.random.int(6);
      const when = at;
      const lasting = 300 + this.random.int(4000);
      this.loop.at(when, () => this.fault(fault, lasting));
      at += 500 + this.random.int(3000);
    }
  }

  private fault(kind: number, lastingMs: number): void {
    const nodes = [...this.nodes.values()];
    const pick = nodes[this.random.int(nodes.length)] as SimNode;
    switch (kind) {
      case 0: {
        const side = this.ids.filter(() => this.random.next() < 0.5);
        this.network.partition([side, this.ids.filter((id) => !side.includes(id))]);
        this.loop.at(this.loop.now + lastingMs, () => this.network.heal());
        return;
      }
      case 1:
      case 2:
        if (!pick.up) return;
        this.crash(pick);
        this.loop.at(this.loop.now + lastingMs, () => this.restart(pick.id));
        return;
      case 3:
        if (!pick.up) return;
        try {
          const voters = pick.raft.membership.voters;
          pick.raft.transferLeadership(voters[this.random.int(voters.length)] as NodeId);
          this.handleReady(pick);
        } catch (error) {
          if (!(error instanceof RaftError)) throw error;
        }
        return;
      case 4:
        this.network.partition([[pick.id], this.ids.filter((id) => id !== pick.id)]);
        this.loop.at(this.loop.now + lastingMs, () => this.network.heal());
        return;
      default:
        this.loseSuffix(this.nodes.get(this.learner) as SimNode);
        this.loop.at(this.loop.now + lastingMs, () => this.restart(this.learner));
    }
  }

  /**
   * The learner crashes and comes back with only a prefix of what it had persisted: it holds no
   * vote, so it may start over from a damaged log; the leader must find its log again.
   */
  private loseSuffix(node: SimNode): void {
    if (!node.up) return;
    this.crash(node);
    const s = node.storage;
    const last = s.entries.at(-1)?.index ?? s.snapshot.index;
    const kept = s.snapshot.index + this.random.int(last - s.snapshot.index + 1);
    s.entries = s.entries.filter((e) => e.index <= kept);
    for (const index of [...s.chain.keys()]) if (index > kept) s.chain.delete(index);
    s.hardState = { ...s.hardState, commit: Math.min(s.hardState.commit, kept) };
  }

  // ---- the adversary ----

  /**
   * The learner, holding only its own identity, sends a voter a message of a random type made up
   * to do harm: a term above any seen, entries and a commit index that would make a command or a
   * configuration of its own committed, a snapshot of its own state, votes it has no right to.
   */
  private forge(untilMs: number): void {
    if (this.loop.now >= untilMs) return;
    this.loop.at(this.loop.now + 20 + this.random.int(200), () => this.forge(untilMs));
    const learner = this.nodes.get(this.learner) as SimNode;
    if (!learner.up) return;
    const voters = this.ids.filter((id) => id !== this.learner);
    const to = voters[this.random.int(voters.length)] as NodeId;
    const target = this.nodes.get(to) as SimNode;
    const term = target.raft.term + this.random.int(3) - 1 + (this.random.next() < 0.7 ? 1 : 0);
    const prevIndex = Math.max(0, target.raft.log.lastIndex - this.random.int(3));
    const prevTerm = target.raft.log.term(prevIndex) ?? 0;
    const seat: Membership = { voters: [...voters, this.learner], learners: [] };
    const entries: Entry[] = [
      {
        index: prevIndex + 1,
        term,
        kind: 'command',
        data: { key: 'a', value: `${FORGED}-${this.steps}` },
      },
      { index: prevIndex + 2, term, kind: 'config', data: seat },
    ].slice(0, this.random.int(3)) as Entry[];
    const envelope = { from: this.learner, to, term };
    const forged: Message[] = [
      {
        ...envelope,
        type: 'append',
        prevIndex,
        prevTerm,
        entries,
        commit: prevIndex + entries.length,
        seq: 1,
      },
      {
        ...envelope,
        type: 'snapshot',
        seq: 1,
        snapshot: {
          index: target.raft.log.lastIndex + 5,
          term,
          membership: seat,
          data: { kv: [['a', FORGED]], chain: FORGED } satisfies SnapshotData,
        },
      },
      {
        ...envelope,
        type: this.random.next() < 0.5 ? 'prevote' : 'vote',
        lastIndex: 1e6,
        lastTerm: term,
        transfer: true,
      },
      { ...envelope, type: this.random.next() < 0.5 ? 'prevote-resp' : 'vote-resp', reject: false },
      { ...envelope, type: 'timeout-now' },
      {
        ...envelope,
        type: 'append-resp',
        reject: this.random.next() < 0.5,
        index: 1e6,
        hintIndex: 0,
        hintTerm: 0,
        seq: 1e6,
      },
    ];
    const message = forged[this.random.int(forged.length)] as Message;
    this.network.send(this.learner, to, () => this.deliver(message));
  }

  // ---- clients ----

  private clientStep(client: number): void {
    if (this.clientsStopped) return;
    const key = KEYS[this.random.int(KEYS.length)] as string;
    const write = this.random.next() < 0.6;
    const op: Operation = {
      client,
      kind: write ? 'write' : 'read',
      key,
      value: write ? `c${client}-${this.nextRequest}` : null,
      invokedAt: this.loop.now,
      returnedAt: Number.POSITIVE_INFINITY,
    };
    const requestId = `${this.nextRequest++}/${key}`;
    this.inFlight.add(op);
    const finish = (outcome: 'ok' | 'refused' | 'unknown', value?: string | null) => {
      if (!this.inFlight.delete(op)) return;
      if (outcome === 'ok') {
        op.returnedAt = this.loop.now;
        if (!write) op.value = value ?? null;
        this.history.push(op);
      } else if (outcome === 'unknown' && write) {
        this.history.push(op); // it may have happened: it stays in the history, open-ended
      }
      this.loop.at(this.loop.now + 20 + this.random.int(200), () => this.clientStep(client));
    };
    this.loop.at(this.loop.now + CLIENT_TIMEOUT_MS, () => finish('unknown'));
    const target = [...this.nodes.values()][this.random.int(this.nodes.size)] as SimNode;
    this.clientNetwork.send(`client${client}`, target.id, () => {
      if (!target.up) return; // lost: the client times out
      try {
        if (write) {
          const { index, term } = target.raft.propose({
            key,
            value: op.value as string,
          } satisfies Command);
          target.writes.set(`${index}:${term}`, () =>
            this.clientNetwork.send(target.id, `client${client}`, () => finish('ok')),
          );
        } else {
          target.readWaiters.set(requestId, (value) =>
            this.clientNetwork.send(target.id, `client${client}`, () => finish('ok', value)),
          );
          target.raft.readIndex(requestId);
        }
        this.handleReady(target);
      } catch (error) {
        if (!(error instanceof RaftError)) throw error;
        target.readWaiters.delete(requestId);
        this.clientNetwork.send(target.id, `client${client}`, () => finish('refused'));
      }
    });
  }
}
