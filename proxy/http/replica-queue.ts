/**
 * Overload waits, it does not fail: a replica is sent at most `perReplica` requests at a time by
 * this node's ingress (HAProxy's server `maxconn`), and a request that finds every replica of its
 * service full waits its turn in a queue of the service (HAProxy's backend queue), first come
 * first served, until a replica has a seat or its wait runs out (then a 503 with Retry-After).
 * So a burst of clients queues here, where it costs a few bytes each, instead of piling into
 * replicas' accept backlogs, where it costs failed connects.
 */

import type { EndpointCounters, Lease } from '../l4/balancer.js';
import type { Endpoint } from '../routing-table.js';

export interface QueueLimits {
  /** Requests one replica is sent at once by this node's ingress (a streaming answer counts). */
  perReplica: number;
  /** Requests that may wait for a replica of one service; past that, a 503 at once. */
  length: number;
  /** How long a request waits for a seat before its 503. */
  waitMs: number;
}

/** The queue would not (or no longer) hold the request: answered 503 with Retry-After. */
export class QueueRefusal extends Error {
  override name = 'QueueRefusal';
}

interface Waiter {
  /** The service's endpoints as the routing table has them now. */
  endpoints: () => readonly Endpoint[];
  tried: Set<string>;
  settle: (outcome: Lease | undefined | QueueRefusal) => void;
}

/** Per service, the requests waiting for a replica with a free seat, oldest first. */
export class ReplicaQueue {
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(
    private readonly counters: EndpointCounters,
    private readonly limits: QueueLimits,
  ) {}

  /** How many requests wait for a replica of the service. */
  depth(serviceId: string): number {
    return this.waiting.get(serviceId)?.length ?? 0;
  }

  /**
   * A lease on the least-loaded replica with a free seat, not tried yet by this request; when
   * every one is full, once one frees (waiting behind those that came first). Undefined when
   * every replica was tried. Rejects with a QueueRefusal when the queue is full, the wait runs
   * out, or the client leaves (`onLeave` calls back then, and returns how to stop listening).
   */
  seat(
    serviceId: string,
    endpoints: () => readonly Endpoint[],
    tried: Set<string>,
    onLeave: (listener: () => void) => () => void,
  ): Promise<Lease | undefined> {
    const queue = this.waiting.get(serviceId) ?? [];
    if (queue.length === 0) {
      const now = this.take(serviceId, endpoints(), tried);
      if (now !== 'full') return Promise.resolve(now);
    }
    if (queue.length >= this.limits.length)
      return Promise.reject(
        new QueueRefusal(
          `every replica of ${serviceId} is busy and ${queue.length} requests already wait`,
        ),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          waiter.settle(
            new QueueRefusal(
              `every replica of ${serviceId} stayed busy for ${this.limits.waitMs / 1000} s`,
            ),
          ),
        this.limits.waitMs,
      );
      const stopListening = onLeave(() =>
        waiter.settle(new QueueRefusal('the client left while waiting')),
      );
      const waiter: Waiter = {
        endpoints,
        tried,
        settle: (outcome) => {
          clearTimeout(timer);
          stopListening();
          this.remove(serviceId, waiter);
          if (outcome instanceof QueueRefusal) reject(outcome);
          else resolve(outcome);
        },
      };
      queue.push(waiter);
      this.waiting.set(serviceId, queue);
    });
  }

  /** The routing table changed: replicas may have come (seats for those waiting) or gone. */
  refresh(): void {
    for (const serviceId of [...this.waiting.keys()]) this.serveWaiting(serviceId);
  }

  /** A lease of `endpoints`, undefined when all were tried, 'full' when the rest are busy. */
  private take(
    serviceId: string,
    endpoints: readonly Endpoint[],
    tried: Set<string>,
  ): Lease | undefined | 'full' {
    if (endpoints.every((e) => tried.has(e.taskId))) return undefined;
    const lease = this.counters.acquire(endpoints, tried, this.limits.perReplica);
    if (!lease) return 'full';
    return {
      endpoint: lease.endpoint,
      failed: () => lease.failed(),
      release: () => {
        lease.release();
        this.serveWaiting(serviceId);
      },
    };
  }

  /** Gives free seats to those waiting, in their order. */
  private serveWaiting(serviceId: string): void {
    const queue = this.waiting.get(serviceId);
    while (queue?.[0]) {
      const head = queue[0];
      const outcome = this.take(serviceId, head.endpoints(), head.tried);
      if (outcome === 'full') return;
      head.settle(outcome);
    }
  }

  private remove(serviceId: string, waiter: Waiter): void {
    const queue = this.waiting.get(serviceId);
    // Mostly the oldest: served first.
    if (queue?.[0] === waiter) queue.shift();
    else {
      const at = queue?.indexOf(waiter) ?? -1;
      if (at >= 0) queue?.splice(at, 1);
    }
    if (queue?.length === 0) this.waiting.delete(serviceId);
  }
}
