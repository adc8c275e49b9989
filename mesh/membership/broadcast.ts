import type { Update } from './messages.js';

interface Queued {
  update: Update;
  transmits: number;
}

/**
 * Updates waiting to be piggybacked. The least-sent go first, each at most `limit` times, and a
 * newer update about a member replaces the queued one (it supersedes it).
 */
export class BroadcastQueue {
  private readonly byMember = new Map<string, Queued>();
  // buckets[t] holds the items sent t times, so picking the least-sent is cheap in big queues.
  private readonly buckets: Set<Queued>[] = [];

  get size(): number {
    return this.byMember.size;
  }

  enqueue(update: Update): void {
    this.drop(update.id);
    const item = { update, transmits: 0 };
    this.byMember.set(update.id, item);
    this.bucket(0).add(item);
  }

  /** Up to `max` updates, counting each as sent once more. */
  take(max: number, limit: number): Update[] {
    const taken: Update[] = [];
    const sent: Queued[] = [];
    for (let t = 0; t < this.buckets.length && taken.length < max; t++) {
      for (const item of this.bucket(t)) {
        if (taken.length >= max) break;
        taken.push(item.update);
        sent.push(item);
      }
    }
    for (const item of sent) {
      this.bucket(item.transmits).delete(item);
      item.transmits += 1;
      if (item.transmits >= limit) this.byMember.delete(item.update.id);
      else this.bucket(item.transmits).add(item);
    }
    return taken;
  }

  private drop(memberId: string): void {
    const old = this.byMember.get(memberId);
    if (!old) return;
    this.bucket(old.transmits).delete(old);
    this.byMember.delete(memberId);
  }

  private bucket(transmits: number): Set<Queued> {
    let bucket = this.buckets[transmits];
    if (!bucket) {
      bucket = new Set();
      this.buckets[transmits] = bucket;
    }
    return bucket;
  }
}
