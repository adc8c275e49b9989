/**
 * Endpoint picking, pure: least connections, ties broken in turn, endpoints that just failed to
 * connect skipped for a while (passive health). The live counters are kept apart from the
 * endpoints the routing table lists, so a new table keeps what was learnt about a task.
 */
import { randomInt } from 'node:crypto';
import type { Endpoint } from '../routing-table.js';

/** After a failed connect, an endpoint is passed over this long unless nothing else is left. */
export const FAIL_TIMEOUT_MS = 3000;

export interface Live {
  active: number;
  failedUntil: number;
}

/** An endpoint taken for one connection or request. */
export interface Lease {
  readonly endpoint: Endpoint;
  /** It did not take the work: passed over for FAIL_TIMEOUT_MS, unless nothing else is left. */
  failed(): void;
  /** The work is over: it counts no more. A second call changes nothing (never below zero). */
  release(): void;
}

/**
 * Where each attempt's endpoint comes from, given those already tried: undefined when none is
 * left. A plain list (`among`) answers at once; the ingress's queue may wait for a free one.
 */
export type Seat = (tried: Set<string>) => Lease | undefined | Promise<Lease | undefined>;

/** The least-loaded endpoint of the list not tried yet (see pick). */
export const among =
  (counters: EndpointCounters, endpoints: readonly Endpoint[]): Seat =>
  (tried) =>
    counters.acquire(endpoints, tried);

/** What an attempt gives: the work done by this endpoint, or passed on to another (and why). */
export type Attempt<T> = { done: T } | { again: Error };

/**
 * The attempt loop of every proxy here (TCP, UDP streams, HTTP, upgrades), as caddy's tryAgain:
 * an endpoint at a time, each at most once, until one does the work or `maxAttempts` are spent.
 * What `seat` throws (the ingress's queue refusing to wait longer) is thrown on.
 * The lease of the one that did stays the caller's to release; the others are released here. It
 * is the attempt that says whether its endpoint failed (lease.failed()).
 */
export async function tryEndpoints<T>(
  seat: Seat,
  maxAttempts: number,
  attempt: (lease: Lease, n: number) => Promise<Attempt<T>>,
): Promise<{ lease: Lease; value: T } | { lastFailure: Error | undefined }> {
  const tried = new Set<string>();
  let lastFailure: Error | undefined;
  for (let n = 1; n <= maxAttempts; n++) {
    const lease = await seat(tried);
    if (!lease) break;
    const outcome = await attempt(lease, n).catch((error: Error) => ({ again: error }));
    if ('done' in outcome) return { lease, value: outcome.done };
    lease.release();
    lastFailure = outcome.again;
  }
  return { lastFailure };
}

/** What is known of each task's endpoint beyond the table: its open connections, its last failure. */
export class EndpointCounters {
  private readonly live = new Map<string, Live>();
  /**
   * Where the turn starts: at random, so that the first connection through each node does not go
   * to the same replica (every node's table lists the endpoints in the same order).
   */
  constructor(private turn = randomInt(2 ** 31)) {}

  get(taskId: string): Live {
    let live = this.live.get(taskId);
    if (!live) {
      live = { active: 0, failedUntil: 0 };
      this.live.set(taskId, live);
    }
    return live;
  }

  /** The next tie-breaker: successive picks among equals go round. */
  nextTurn(): number {
    this.turn = (this.turn + 1) % Number.MAX_SAFE_INTEGER;
    return this.turn;
  }

  /**
   * The endpoint for the next attempt (see pick), marked tried and counted as active until its
   * lease is released; undefined when every endpoint was tried, or every one left holds `limit`.
   */
  acquire(endpoints: readonly Endpoint[], tried: Set<string>, limit = Infinity): Lease | undefined {
    const endpoint = pick(
      endpoints,
      (id) => this.get(id),
      Date.now(),
      tried,
      this.nextTurn(),
      limit,
    );
    if (!endpoint) return undefined;
    tried.add(endpoint.taskId);
    const live = this.get(endpoint.taskId);
    live.active += 1;
    let held = true;
    return {
      endpoint,
      failed: () => {
        live.failedUntil = Date.now() + FAIL_TIMEOUT_MS;
      },
      release: () => {
        if (!held) return;
        held = false;
        live.active -= 1;
      },
    };
  }

  /** Forgets tasks the table no longer lists (and that hold no connection). */
  retain(taskIds: ReadonlySet<string>): void {
    for (const [id, live] of this.live)
      if (!taskIds.has(id) && live.active === 0) this.live.delete(id);
  }
}

/**
 * The endpoint for a new connection: among those not tried yet and holding fewer than `limit`
 * (caddy's Available = Healthy && !Full), the healthy ones with the fewest connections; when
 * every such one failed recently, those still (a recent failure is a hint, not a verdict).
 * Undefined when every endpoint was tried or is full.
 */
export function pick(
  endpoints: readonly Endpoint[],
  live: (taskId: string) => Live,
  now: number,
  tried: ReadonlySet<string>,
  turn: number,
  limit = Infinity,
): Endpoint | undefined {
  const untried = endpoints.filter((e) => !tried.has(e.taskId) && live(e.taskId).active < limit);
  const healthy = untried.filter((e) => live(e.taskId).failedUntil <= now);
  const pool = healthy.length > 0 ? healthy : untried;
  if (pool.length === 0) return undefined;
  const fewest = Math.min(...pool.map((e) => live(e.taskId).active));
  const least = pool.filter((e) => live(e.taskId).active === fewest);
  return least[turn % least.length];
}
