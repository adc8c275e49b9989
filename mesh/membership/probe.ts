import { type Random, shuffle } from '../random.js';
import type { Awareness } from './awareness.js';
import type { SwimConfig } from './config.js';
import type { MemberState } from './state.js';

/** Where a message goes: an address, and the member's ID when we know it. */
export interface Destination {
  id?: string;
  address: string;
}

export type Probe =
  | { type: 'ping'; seq: number; target: string }
  | { type: 'ping-req'; seq: number; target: string; targetAddr: string }
  | { type: 'ack'; seq: number }
  | { type: 'nack'; seq: number };

interface Round {
  seq: number;
  target: string;
  indirectAt: number;
  endAt: number;
  indirectSent: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  origin: Destination;
  originSeq: number;
  deadline: number;
}

/**
 * The failure detector: one member probed per interval, round-robin over a shuffled list; when the
 * direct ping goes unanswered, k others are asked to ping it; when nobody gets an ack, it is
 * suspected. Also relays other members' indirect probes.
 */
export class Prober {
  /** Probe rounds that ended with no ack, direct or indirect: each made its target suspect. */
  failedRounds = 0;
  private order: string[] = [];
  private cursor = 0;
  private round: Round | undefined;
  private readonly relays = new Map<number, Relay>();
  private nextRoundAt: number;
  /** A member to probe before the round-robin goes on: its link broke. */
  private hinted: string | undefined;
  private readonly hintedAt = new Map<string, number>();

  constructor(
    private readonly config: SwimConfig,
    private readonly state: MemberState,
    private readonly awareness: Awareness,
    private readonly random: Random,
    private readonly nextSeq: () => number,
    private readonly send: (to: Destination, probe: Probe) => void,
    now: number,
  ) {
    // Spread rounds over the interval so nodes started together do not probe in lockstep.
    this.nextRoundAt = now + random.int(config.probeIntervalMs);
  }

  get nextDeadline(): number {
    let next = this.round
      ? this.round.indirectSent
        ? this.round.endAt
        : this.round.indirectAt
      : this.nextRoundAt;
    for (const relay of this.relays.values()) next = Math.min(next, relay.deadline);
    return next;
  }

  tick(now: number): void {
    for (const [seq, relay] of this.relays) {
      if (relay.deadline > now) continue;
      this.relays.delete(seq);
      this.send(relay.origin, { type: 'nack', seq: relay.originSeq });
    }
    const round = this.round;
    if (round && !round.indirectSent && now >= round.indirectAt) this.askOthers(round);
    if (round && now >= round.endAt) this.fail(round, now);
    if (!this.round && now >= this.nextRoundAt) {
      this.nextRoundAt = now + this.awareness.scale(this.config.probeIntervalMs);
      if (!this.state.leaving) this.start(now);
    }
  }

  /**
   * A connection to this member broke: probe it next, at once if no round is running. Only a
   * failed probe still makes it suspect; the hint just saves waiting for its turn. At most one
   * hint per member per probe interval, so a flapping link cannot multiply probes.
   */
  hint(id: string, now: number): void {
    const member = this.state.members.get(id);
    if (member?.status !== 'alive' || this.round?.target === id || this.state.leaving) return;
    if (now - (this.hintedAt.get(id) ?? Number.NEGATIVE_INFINITY) < this.config.probeIntervalMs)
      return;
    this.hintedAt.set(id, now);
    this.hinted = id;
    if (!this.round) this.nextRoundAt = Math.min(this.nextRoundAt, now);
  }

  /** A ping addressed to us: acknowledge it. */
  onPing(from: Destination, seq: number, target: string): void {
    if (target === this.state.self.id) this.send(from, { type: 'ack', seq });
  }

  /** Someone asks us to probe `target` for them. */
  onPingReq(from: Destination, seq: number, target: string, targetAddr: string, now: number): void {
    const relaySeq = this.nextSeq();
    // Give up a little before the origin does, so that our nack reaches it within its round.
    this.relays.set(relaySeq, {
      origin: from,
      originSeq: seq,
      deadline: now + Math.floor(this.config.probeTimeoutMs * 0.8),
    });
    this.send({ id: target, address: targetAddr }, { type: 'ping', seq: relaySeq, target });
  }

  onAck(seq: number): void {
    const relay = this.relays.get(seq);
    if (relay) {
      this.relays.delete(seq);
      this.send(relay.origin, { type: 'ack', seq: relay.originSeq });
      return;
    }
    if (this.round?.seq !== seq) return; // late: that round is over
    this.round = undefined;
    this.awareness.apply(-1);
  }

  onNack(seq: number): void {
    if (this.round?.seq === seq) this.round.nacks += 1;
  }

  private start(now: number): void {
    const hinted = this.hinted === undefined ? undefined : this.state.members.get(this.hinted);
    this.hinted = undefined;
    const target = hinted?.status === 'alive' ? hinted : this.nextTarget();
    if (!target) return;
    const interval = this.nextRoundAt - now;
    const seq = this.nextSeq();
    this.round = {
      seq,
      target: target.id,
      indirectAt: now + this.awareness.scale(this.config.probeTimeoutMs),
      endAt: now + interval,
      indirectSent: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.send({ id: target.id, address: target.address }, { type: 'ping', seq, target: target.id });
  }

  private askOthers(round: Round): void {
    round.indirectSent = true;
    const target = this.state.members.get(round.target);
    if (!target) return;
    const helpers = this.state.randomOthers(
      this.config.indirectChecks,
      (m) => m.status === 'alive' && m.id !== round.target,
      this.random,
    );
    round.expectedNacks = helpers.length;
    for (const helper of helpers) {
      this.send(
        { id: helper.id, address: helper.address },
        { type: 'ping-req', seq: round.seq, target: round.target, targetAddr: target.address },
      );
    }
  }

  private fail(round: Round, now: number): void {
    this.round = undefined;
    this.failedRounds += 1;
    // Missing nacks mean our own links or our own slowness may be to blame: back off.
    this.awareness.apply(Math.max(0, round.expectedNacks - round.nacks));
    this.state.suspectMember(round.target, now);
  }

  private nextTarget(): { id: string; address: string } | undefined {
    for (let tries = 0; tries <= this.order.length; tries++) {
      if (this.cursor >= this.order.length) {
        this.order = shuffle(
          [...this.state.members.keys()].filter((id) => id !== this.state.self.id),
          this.random,
        );
        this.cursor = 0;
      }
      const id = this.order[this.cursor++];
      const member = id === undefined ? undefined : this.state.members.get(id);
      if (member && (member.status === 'alive' || member.status === 'suspect')) return member;
    }
    return undefined;
  }
}
