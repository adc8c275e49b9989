import { LAN_DEFAULTS, type SwimConfig } from '../../mesh/membership/config.js';
import type { NodeMeta, SwimMessage } from '../../mesh/membership/messages.js';
import type { MemberEvent } from '../../mesh/membership/state.js';
import { Swim } from '../../mesh/membership/swim.js';
import { seededRandom } from '../../mesh/random.js';
import { EventLoop } from './events.js';
import { type NetworkOptions, SimNetwork } from './network.js';

export interface SwimSimOptions {
  seed: number;
  loss?: number;
  latencyMs?: [number, number];
  duplicate?: number;
  config?: Partial<SwimConfig>;
}

interface SimNode {
  id: string;
  swim: Swim;
  crashed: boolean;
  stalledUntil: number;
  wakeAt: number;
  /** Bumps on every restart, so a dead incarnation's wake-ups are ignored. */
  life: number;
}

const STATUS_RANK = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;

export type EventObserver = (observer: string, event: MemberEvent, now: number) => void;

export function simMeta(id: string, version = '1'): NodeMeta {
  return {
    addresses: { peer: id },
    capacity: { cpus: 2, memoryBytes: 4 * 2 ** 30 },
    labels: {},
    raftRole: 'learner',
    version,
  };
}

/**
 * Many SWIM state machines over a simulated network, driven by one event loop. Node IDs double as
 * addresses. Crashes drop everything sent to a node; a stall defers its work (a GC pause, a
 * starved CPU) until it wakes.
 */
export class SwimSim {
  readonly loop = new EventLoop();
  readonly network: SimNetwork;
  readonly config: SwimConfig;
  readonly nodes = new Map<string, SimNode>();
  private readonly observers: EventObserver[] = [];
  /** Broken invariants, checked on every event; a correct run leaves this empty. */
  readonly violations: string[] = [];
  private readonly lastSeen = new Map<string, { inc: number; rank: number }>();

  constructor(private readonly options: SwimSimOptions) {
    const network: NetworkOptions = {
      seed: options.seed,
      latencyMs: options.latencyMs ?? [1, 5],
      loss: options.loss ?? 0,
      duplicate: options.duplicate ?? 0,
    };
    this.network = new SimNetwork(this.loop, network);
    this.config = { ...LAN_DEFAULTS, ...options.config };
  }

  get now(): number {
    return this.loop.now;
  }

  observe(observer: EventObserver): void {
    this.observers.push(observer);
  }

  /** Starts (or restarts) a node now, joining through the seeds. */
  start(id: string, seeds: string[] = []): void {
    const previous = this.nodes.get(id);
    const life = (previous?.life ?? 0) + 1;
    const swim = new Swim({
      config: this.config,
      id,
      address: id,
      meta: simMeta(id),
      random: seededRandom(hash(`${this.options.seed}/${id}/${life}`)),
      now: this.now,
    });
    const node: SimNode = {
      id,
      swim,
      crashed: false,
      stalledUntil: 0,
      wakeAt: Number.POSITIVE_INFINITY,
      life,
    };
    this.nodes.set(id, node);
    swim.join(seeds, this.now);
    this.flush(node);
  }

  crash(id: string): void {
    const node = this.node(id);
    node.crashed = true;
  }

  /** The observer's transport lost its connection to `about`. */
  linkBroken(observer: string, about: string): void {
    const node = this.node(observer);
    node.swim.linkBroken(about, this.now);
    this.flush(node);
  }

  stall(id: string, ms: number): void {
    this.node(id).stalledUntil = this.now + ms;
  }

  leave(id: string): void {
    const node = this.node(id);
    node.swim.leave(this.now);
    this.flush(node);
  }

  updateMeta(id: string, meta: NodeMeta): void {
    const node = this.node(id);
    node.swim.updateMeta(meta);
    this.flush(node);
  }

  isUp(id: string): boolean {
    const node = this.nodes.get(id);
    return node !== undefined && !node.crashed;
  }

  liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => !n.crashed);
  }

  run(until: number, stop?: () => boolean): boolean {
    return this.loop.run(until, stop);
  }

  private node(id: string): SimNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no simulated node ${id}`);
    return node;
  }

  /** Sends what the node wants sent, reports its events, and books its next wake-up. */
  private flush(node: SimNode): void {
    for (const { to, message } of node.swim.takeOutbox()) {
      this.network.send(node.id, to.address, () => this.deliver(to.address, node.id, message));
    }
    for (const event of node.swim.takeEvents()) {
      this.check(node, event);
      for (const observer of this.observers) observer(node.id, event, this.now);
    }
    const wake = node.swim.nextWakeAt();
    if (wake < node.wakeAt) {
      node.wakeAt = wake;
      const life = node.life;
      this.loop.at(wake, () => this.wake(node.id, wake, life));
    }
  }

  /**
   * SWIM precedence, seen from one node: news about a member only moves forward, to a higher
   * incarnation or, at the same incarnation, to a worse status (alive < suspect < dead < left).
   */
  private check(node: SimNode, { member }: MemberEvent): void {
    const key = `${node.id}#${node.life}>${member.id}`;
    const rank = STATUS_RANK[member.status];
    const last = this.lastSeen.get(key);
    this.lastSeen.set(key, { inc: member.incarnation, rank });
    if (!last) return;
    const forward =
      member.incarnation > last.inc || (member.incarnation === last.inc && rank > last.rank);
    if (!forward) {
      this.violations.push(
        `${this.now.toFixed(0)} ms: ${node.id} moved ${member.id} back from inc ${last.inc}/rank ${last.rank} to inc ${member.incarnation}/${member.status}`,
      );
    }
  }

  private deliver(to: string, from: string, message: SwimMessage): void {
    const node = this.nodes.get(to);
    if (!node || node.crashed) return;
    if (this.now < node.stalledUntil) {
      this.loop.at(node.stalledUntil, () => this.deliver(to, from, message));
      return;
    }
    node.swim.receive(from, message, this.now);
    this.flush(node);
  }

  private wake(id: string, at: number, life: number): void {
    const node = this.nodes.get(id);
    if (!node || node.crashed || node.life !== life || node.wakeAt !== at) return;
    node.wakeAt = Number.POSITIVE_INFINITY;
    if (this.now < node.stalledUntil) {
      node.wakeAt = node.stalledUntil;
      this.loop.at(node.stalledUntil, () => this.wake(id, node.stalledUntil, life));
      return;
    }
    node.swim.tick(this.now);
    this.flush(node);
    // A state machine whose next deadline does not move past now would spin here forever.
    if (node.wakeAt <= at)
      throw new Error(`${id} asked to wake at ${node.wakeAt} again after ticking at ${at}`);
  }
}

/** FNV-1a, to derive a per-node seed from the run's seed. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
