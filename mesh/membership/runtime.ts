import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { LimitedLog } from '../limited-log.js';
import { seededRandom } from '../random.js';
import { TransportError } from '../transport/errors.js';
import type { Transport } from '../transport/transport.js';
import { LAN_DEFAULTS, type SwimConfig } from './config.js';
import { type NodeMeta, parseSwimMessage } from './messages.js';
import type { Member, MemberEvent } from './state.js';
import { Swim } from './swim.js';

export const SWIM_MESSAGE = 'swim';

export interface MembershipOptions {
  transport: Transport;
  log: Logger;
  meta: NodeMeta;
  config?: Partial<SwimConfig>;
}

interface MembershipEvents {
  change: [MemberEvent];
}

/**
 * Drives the SWIM state machine over the mTLS transport: feeds it received messages and a
 * monotonic clock, sends what it asks, and wakes it when it says. A message's sender is the node
 * ID from the peer's certificate, never what the message claims.
 */
export class Membership extends EventEmitter<MembershipEvents> {
  private readonly swim: Swim;
  private readonly log: Logger;
  /** Malformed SWIM messages, a line per peer a minute. */
  private readonly refusals: LimitedLog;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private drained: (() => void) | undefined;

  constructor(private readonly options: MembershipOptions) {
    super();
    this.log = options.log;
    this.refusals = new LimitedLog(options.log, 1);
    this.swim = new Swim({
      config: { ...LAN_DEFAULTS, ...options.config },
      id: options.transport.nodeId,
      address: options.transport.address,
      meta: options.meta,
      random: seededRandom(randomInt(2 ** 31)),
      now: this.now(),
    });
    options.transport.handle(SWIM_MESSAGE, (body, peer) => {
      let message: ReturnType<typeof parseSwimMessage>;
      try {
        message = parseSwimMessage(body);
      } catch (error) {
        this.refusals.warn(
          peer.nodeId,
          { peer: peer.nodeId, reason: (error as Error).message },
          'SWIM message refused',
        );
        return;
      }
      this.swim.receive(peer.nodeId, message, this.now());
      this.flush();
    });
    options.transport.onPeerLost((nodeId) => {
      if (this.stopped) return;
      this.swim.linkBroken(nodeId, this.now());
      this.flush();
    });
  }

  /** Joins through the seeds (host:port); with none, this node starts a cluster of its own. */
  start(seeds: string[]): void {
    this.swim.join(seeds, this.now());
    this.flush();
  }

  /** Probes of other members that got no ack at all since this node started. */
  get failedProbes(): number {
    return this.swim.failedProbes;
  }

  members(): Member[] {
    const offset = Date.now() - this.now();
    const wall = (at: number) => Math.round(at + offset);
    return this.swim.members().map((m) => ({
      ...m,
      since: wall(m.since),
      ...(m.heardAt !== undefined && { heardAt: wall(m.heardAt) }),
    }));
  }

  updateMeta(meta: NodeMeta): void {
    this.swim.updateMeta(meta);
    this.flush();
  }

  /** The cluster removed this member: gossip counts it as left, and passes that on. */
  forget(id: string): void {
    this.swim.forget(id, this.now());
    this.flush();
  }

  /** Announces that we leave and waits (boundedly) until the news has been passed on. */
  async leave(timeoutMs = 3000): Promise<void> {
    this.swim.leave(this.now());
    const drained = new Promise<void>((resolve) => {
      this.drained = resolve;
    });
    this.flush();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([drained, timeout]);
    clearTimeout(timer);
    this.stop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Monotonic: wall-clock jumps must not fire or stall SWIM's timers. */
  private now(): number {
    return performance.now();
  }

  private flush(): void {
    if (this.stopped) return;
    for (const { to, message } of this.swim.takeOutbox()) {
      const peer = to.id === undefined ? to.address : { address: to.address, nodeId: to.id };
      try {
        this.options.transport.send(peer, SWIM_MESSAGE, message);
      } catch (error) {
        // SWIM is built to survive lost messages; a full queue to a dead peer is one of them.
        if (!(error instanceof TransportError)) throw error;
        this.log.debug({ to: to.address, reason: error.message }, 'SWIM message not sent');
      }
    }
    for (const event of this.swim.takeEvents()) {
      const { member, previous } = event;
      this.log.info(
        {
          member: member.id,
          address: member.address,
          status: member.status,
          previous,
          incarnation: member.incarnation,
        },
        'member changed',
      );
      this.emit('change', event);
    }
    if (this.drained && this.swim.pendingBroadcasts === 0) this.drained();
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const delay = Math.max(0, this.swim.nextWakeAt() - this.now());
    if (!Number.isFinite(delay)) return;
    this.timer = setTimeout(() => {
      this.swim.tick(this.now());
      this.flush();
    }, delay);
  }
}
