/**
 * The index of the cluster state this node's routing view is as of, and a bounded wait for it to
 * reach an index another node's view had. Replicas apply the same log at different moments (the
 * leader's first): a node asked for a task its own view does not list as ready yet waits for its
 * view to catch up before it refuses, instead of refusing what it is about to serve.
 */
export class ViewIndex {
  private index = 0;
  private readonly waiting = new Set<{ index: number; done: () => void }>();

  constructor(private readonly maxWaitMs: number) {}

  /** The index the view is as of. */
  get current(): number {
    return this.index;
  }

  /** The view is now as of `index`: the waits for it, or for an index before it, end. */
  reached(index: number): void {
    this.index = index;
    for (const waiter of this.waiting) if (waiter.index <= index) waiter.done();
  }

  /** Resolves once the view is as of `index`, or once the wait (the longest, unless told) ran out. */
  until(index: number, maxWaitMs = this.maxWaitMs): Promise<void> {
    if (index <= this.index) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        index,
        done: () => {
          clearTimeout(timer);
          this.waiting.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, maxWaitMs);
      this.waiting.add(waiter);
    });
  }

  /** Ends every wait now (the node stops). */
  close(): void {
    for (const waiter of this.waiting) waiter.done();
  }
}
