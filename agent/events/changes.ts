import type { EventEmitter } from 'node:events';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { ChangeMark } from '../control/api.js';
import type { EventFeed } from './feed.js';

/** The longest a blocking query may wait, as Nomad's and Consul's do (their default 5 min is too long behind proxies). */
export const MAX_WAIT_MS = 30_000;

/**
 * A blocking query over this node's view (`GET /v1/changes`, as Nomad's `?index=&wait=`): it
 * answers as soon as the replicated state, the events feed or membership moves past the mark
 * the caller holds, or when the wait is over, with the mark now.
 */
export class Changes {
  private members = 0;
  /** Each waiting query: look again (answer if moved), or answer now. */
  private readonly waiting = new Set<{ check: () => void; finish: () => void }>();
  private readonly stops: Array<() => void> = [];

  constructor(
    private readonly options: { state: ClusterState; feed: EventFeed; membership: EventEmitter },
  ) {}

  start(): void {
    const wake = () => {
      for (const w of [...this.waiting]) w.check();
    };
    const memberChanged = () => {
      this.members++;
      wake();
    };
    this.options.membership.on('change', memberChanged);
    this.stops.push(
      () => this.options.membership.off('change', memberChanged),
      this.options.state.watch(wake),
      this.options.feed.onEvent(wake),
    );
  }

  /** Stops watching; every query waiting is answered now. */
  stop(): void {
    for (const stop of this.stops.splice(0)) stop();
    for (const w of [...this.waiting]) w.finish();
  }

  mark(): ChangeMark {
    return {
      index: this.options.state.appliedIndex,
      events: this.options.feed.last,
      members: this.members,
    };
  }

  /** The mark once it differs from `after` (at once if it does now), or at the end of the wait. */
  async after(after: Partial<ChangeMark>, waitMs: number): Promise<ChangeMark> {
    const moved = () => {
      const now = this.mark();
      return (Object.keys(now) as Array<keyof ChangeMark>).some(
        (key) => after[key] !== undefined && now[key] !== after[key],
      );
    };
    if (!moved())
      await new Promise<void>((resolve) => {
        const waiter = {
          check: () => {
            if (moved()) waiter.finish();
          },
          finish: () => {
            clearTimeout(timer);
            this.waiting.delete(waiter);
            resolve();
          },
        };
        const timer = setTimeout(waiter.finish, Math.min(waitMs, MAX_WAIT_MS));
        this.waiting.add(waiter);
      });
    return this.mark();
  }
}
