/**
 * UDP flows, pure: which replica each client (its address and port, on one listener) is sent to,
 * kept while datagrams pass either way and forgotten after an idle timeout, as IPVS keeps its UDP
 * connections (300 s by default). Time is the caller's.
 */

/** How long a flow is kept without a datagram either way, unless the agent is told otherwise. */
export const DEFAULT_UDP_IDLE_MS = 300_000;

export interface Flow {
  /** The replica's task the flow goes to. */
  taskId: string;
  lastSeen: number;
}

export class FlowTable<F extends Flow> {
  private readonly flows = new Map<string, F>();

  constructor(readonly idleMs: number) {}

  get size(): number {
    return this.flows.size;
  }

  get(key: string): F | undefined {
    return this.flows.get(key);
  }

  add(key: string, flow: F): void {
    this.flows.set(key, flow);
  }

  /** A datagram passed on the flow, one way or the other. */
  touch(flow: F, now: number): void {
    flow.lastSeen = now;
  }

  /** Removes the flow with this key, if it is still the one given. */
  delete(key: string, flow: F): boolean {
    if (this.flows.get(key) !== flow) return false;
    return this.flows.delete(key);
  }

  /** Removes and returns the flows idle for the timeout or longer. */
  expire(now: number): F[] {
    return this.removeWhere((flow) => now - flow.lastSeen >= this.idleMs);
  }

  /** Removes and returns the flows to tasks not in the set (replicas gone, or no longer ready). */
  retain(taskIds: ReadonlySet<string>): F[] {
    return this.removeWhere((flow) => !taskIds.has(flow.taskId));
  }

  /** Removes and returns every flow. */
  clear(): F[] {
    return this.removeWhere(() => true);
  }

  private removeWhere(gone: (flow: F) => boolean): F[] {
    const removed: F[] = [];
    for (const [key, flow] of this.flows)
      if (gone(flow)) {
        this.flows.delete(key);
        removed.push(flow);
      }
    return removed;
  }
}
