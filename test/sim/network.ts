import { type Random, seededRandom } from '../../mesh/random.js';
import type { EventLoop } from './events.js';

export interface NetworkOptions {
  seed: number;
  /** One-way latency, uniform in [min, max] ms. */
  latencyMs: [number, number];
  /** Probability that a message is lost. */
  loss: number;
  /** Probability that a delivered message is delivered twice. */
  duplicate?: number;
}

/**
 * A seeded network between named endpoints: latency, loss, duplication (which also reorders,
 * since each copy draws its own latency) and partitions. Delivery is a callback at a simulated time.
 */
export class SimNetwork {
  readonly random: Random;
  sent = 0;
  private groups = new Map<string, number>();

  constructor(
    private readonly loop: EventLoop,
    private readonly options: NetworkOptions,
  ) {
    this.random = seededRandom(options.seed);
  }

  /** Endpoints in different groups cannot reach each other; unlisted ones reach everybody. */
  partition(groups: string[][]): void {
    this.groups = new Map(groups.flatMap((members, g) => members.map((m) => [m, g] as const)));
  }

  heal(): void {
    this.groups.clear();
  }

  canReach(from: string, to: string): boolean {
    const a = this.groups.get(from);
    const b = this.groups.get(to);
    return a === undefined || b === undefined || a === b;
  }

  send(from: string, to: string, deliver: () => void): void {
    this.sent += 1;
    if (!this.canReach(from, to) || this.random.next() < this.options.loss) return;
    const copies = this.random.next() < (this.options.duplicate ?? 0) ? 2 : 1;
    const [min, max] = this.options.latencyMs;
    for (let c = 0; c < copies; c++) {
      const latency = min + this.random.next() * (max - min);
      // A partition that forms while the message is in flight drops it too.
      this.loop.at(this.loop.now + latency, () => {
        if (this.canReach(from, to)) deliver();
      });
    }
  }
}
