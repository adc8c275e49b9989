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

  /** Forgets tasks the table no longer lists (and that hold no connection). */
  retain(taskIds: ReadonlySet<string>): void {
    for (const [id, live] of this.live)
      if (!taskIds.has(id) && live.active === 0) this.live.delete(id);
  }
}

/**
 * The endpoint for a new connection: among those not tried yet, the healthy ones with the fewest
 * connections; when every untried one failed recently, those still (a recent failure is a hint,
 * not a verdict). Undefined when every endpoint was tried.
 */
export function pick(
  endpoints: readonly Endpoint[],
  live: (taskId: string) => Live,
  now: number,
  tried: ReadonlySet<string>,
  turn: number,
): Endpoint | undefined {
  const untried = endpoints.filter((e) => !tried.has(e.taskId));
  const healthy = untried.filter((e) => live(e.taskId).failedUntil <= now);
  const pool = healthy.length > 0 ? healthy : untried;
  if (pool.length === 0) return undefined;
  const fewest = Math.min(...pool.map((e) => live(e.taskId).active));
  const least = pool.filter((e) => live(e.taskId).active === fewest);
  return least[turn % least.length];
}
