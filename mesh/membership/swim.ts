import type { Random } from '../random.js';
import { Awareness } from './awareness.js';
import { pushPullIntervalMs, retransmitLimit, type SwimConfig } from './config.js';
import type { NodeMeta, SwimMessage, Update } from './messages.js';
import { type Destination, type Probe, Prober } from './probe.js';
import { type Member, type MemberEvent, MemberState } from './state.js';

export interface Outgoing {
  to: Destination;
  message: SwimMessage;
}

export interface SwimOptions {
  config: SwimConfig;
  id: string;
  address: string;
  meta: NodeMeta;
  random: Random;
  now: number;
}

/**
 * SWIM membership as a pure state machine (in the manner of etcd-io/raft): time, randomness and
 * received messages go in; messages to send and membership events come out through
 * takeOutbox() and takeEvents(). It owns no timer and no socket; nextWakeAt() tells the caller
 * when to call tick() again.
 */
export class Swim {
  private readonly config: SwimConfig;
  private readonly random: Random;
  private readonly state: MemberState;
  private readonly awareness: Awareness;
  private readonly prober: Prober;
  private outbox: Outgoing[] = [];
  private seq = 0;
  private nextGossipAt: number;
  private nextPushPullAt: number;
  private nextReconnectAt: number;
  private seeds: string[] = [];
  private nextJoinAt = Number.POSITIVE_INFINITY;

  constructor(options: SwimOptions) {
    this.config = options.config;
    this.random = options.random;
    this.awareness = new Awareness(options.config.awarenessMaxMultiplier);
    this.state = new MemberState(
      options.config,
      {
        id: options.id,
        address: options.address,
        meta: options.meta,
        // A restarted node starts from 0 again and outbids its old self by refuting.
        incarnation: 0,
        status: 'alive',
        since: options.now,
      },
      this.awareness,
    );
    this.prober = new Prober(
      options.config,
      this.state,
      this.awareness,
      options.random,
      () => ++this.seq,
      (to, probe) => this.sendProbe(to, probe),
      options.now,
    );
    this.nextGossipAt = options.now + this.random.int(options.config.gossipIntervalMs);
    // Staggered, so that nodes started together do not sync in lockstep.
    this.nextPushPullAt = options.now + this.random.int(this.pushPullInterval());
    this.nextReconnectAt = options.now + options.config.reconnectIntervalMs;
  }

  /** Updates still waiting to be gossiped: zero once the cluster is quiet. */
  get pendingBroadcasts(): number {
    return this.state.broadcasts.size;
  }

  members(): Member[] {
    return [...this.state.members.values()].map((m) => ({ ...m }));
  }

  member(id: string): Member | undefined {
    const m = this.state.members.get(id);
    return m && { ...m };
  }

  takeOutbox(): Outgoing[] {
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  /** Probes of other members that got no ack at all since this node started. */
  get failedProbes(): number {
    return this.prober.failedRounds;
  }

  takeEvents(): MemberEvent[] {
    return this.state.takeEvents();
  }

  /** Pushes our state to the seeds until one of them answers with its own. */
  join(seeds: string[], now: number): void {
    this.seeds = seeds.filter((s) => s !== this.state.self.address);
    if (this.seeds.length === 0) return;
    this.nextJoinAt = now;
    this.tick(now);
  }

  /** Announces our departure; the caller should keep ticking briefly so it spreads. */
  leave(now: number): void {
    this.state.leave(now);
    this.nextJoinAt = Number.POSITIVE_INFINITY;
    this.gossip(now, Math.max(this.config.gossipNodes, 5));
  }

  /**
   * Counts another member as gone for good (the cluster removed it) and says so: nobody probes
   * or redials it from then on, and a later rumour of it alive at that incarnation changes nothing.
   */
  forget(id: string, now: number): void {
    const member = this.state.members.get(id);
    if (!member || member.status === 'left') return;
    this.state.apply(
      { status: 'left', id, inc: member.incarnation, from: this.state.self.id },
      now,
    );
  }

  /** Announces new metadata (a new incarnation, so it overrides what others hold). */
  updateMeta(meta: NodeMeta): void {
    this.state.setMeta(meta);
  }

  nextWakeAt(): number {
    return Math.min(
      this.prober.nextDeadline,
      this.state.broadcasts.size > 0 ? this.nextGossipAt : Number.POSITIVE_INFINITY,
      this.nextPushPullAt,
      this.nextReconnectAt,
      this.state.nextSuspicionDeadline(),
      this.nextJoinAt,
    );
  }

  /** The transport lost its connection to this member: probe it soon. */
  linkBroken(id: string, now: number): void {
    this.prober.hint(id, now);
  }

  tick(now: number): void {
    if (now >= this.nextJoinAt) {
      for (const seed of this.seeds) this.push({ address: seed }, true);
      this.nextJoinAt = now + this.config.joinRetryMs;
    }
    this.prober.tick(now);
    this.state.expireSuspicions(now);
    if (now >= this.nextGossipAt) {
      this.nextGossipAt = now + this.config.gossipIntervalMs;
      if (this.state.broadcasts.size > 0) this.gossip(now, this.config.gossipNodes);
    }
    if (now >= this.nextPushPullAt) {
      this.nextPushPullAt = now + this.pushPullInterval();
      const [peer] = this.state.randomOthers(1, (m) => m.status === 'alive', this.random);
      if (peer && !this.state.leaving) this.push(peer, false);
    }
    if (now >= this.nextReconnectAt) {
      this.nextReconnectAt = now + this.config.reconnectIntervalMs;
      const [dead] = this.state.randomOthers(1, (m) => m.status === 'dead', this.random);
      if (dead && !this.state.leaving) this.push(dead, false);
    }
  }

  /** A message from an authenticated member `fromId`. */
  receive(fromId: string, message: SwimMessage, now: number): void {
    const from: Destination = { id: fromId, address: message.addr };
    this.state.heard(fromId, now);
    if ('updates' in message) for (const update of message.updates) this.state.apply(update, now);
    switch (message.type) {
      case 'ping':
        this.prober.onPing(from, message.seq, message.target);
        break;
      case 'ping-req':
        this.prober.onPingReq(from, message.seq, message.target, message.targetAddr, now);
        break;
      case 'ack':
        this.prober.onAck(message.seq);
        break;
      case 'nack':
        this.prober.onNack(message.seq);
        break;
      case 'gossip':
        break;
      case 'push':
        this.state.merge(message.state, now);
        this.send(from, { type: 'pull', state: this.state.snapshot() });
        break;
      case 'pull':
        this.state.merge(message.state, now);
        if (this.nextJoinAt !== Number.POSITIVE_INFINITY) {
          this.nextJoinAt = Number.POSITIVE_INFINITY;
          this.nextPushPullAt = Math.min(this.nextPushPullAt, now + this.config.joinSyncDelayMs);
        }
        break;
    }
  }

  private pushPullInterval(): number {
    return pushPullIntervalMs(this.config, this.state.liveCount);
  }

  private gossip(now: number, fanout: number): void {
    const reachable = (m: Member) =>
      m.status === 'alive' ||
      m.status === 'suspect' ||
      now - m.since < this.config.gossipToTheDeadMs;
    for (const member of this.state.randomOthers(fanout, reachable, this.random)) {
      const updates = this.piggyback();
      if (updates.length === 0) return;
      this.send(member, { type: 'gossip', updates });
    }
  }

  private push(to: Destination, join: boolean): void {
    this.send(to, { type: 'push', join, state: this.state.snapshot() });
  }

  private piggyback(): Update[] {
    return this.state.broadcasts.take(
      this.config.maxPiggyback,
      retransmitLimit(this.config, this.state.liveCount),
    );
  }

  private sendProbe(to: Destination, probe: Probe): void {
    this.send(to, { ...probe, updates: this.piggyback() });
  }

  private send(to: Destination, body: DistributiveOmit<SwimMessage, 'addr'>): void {
    const destination =
      to.id === undefined ? { address: to.address } : { id: to.id, address: to.address };
    this.outbox.push({
      to: destination,
      message: { ...body, addr: this.state.self.address } as SwimMessage,
    });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
