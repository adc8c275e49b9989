interface Scheduled {
  at: number;
  order: number;
  run: () => void;
}

/** Simulated time: callbacks run in (time, insertion) order, so every run replays exactly. */
export class EventLoop {
  now = 0;
  private heap: Scheduled[] = [];
  private order = 0;

  at(time: number, run: () => void): void {
    this.heap.push({ at: Math.max(time, this.now), order: this.order++, run });
    this.up(this.heap.length - 1);
  }

  /** Runs events until `until` (inclusive) or until `stop` says so after an event. */
  run(until: number, stop: () => boolean = () => false): boolean {
    while (this.heap.length > 0 && (this.heap[0] as Scheduled).at <= until) {
      const next = this.pop();
      this.now = next.at;
      next.run();
      if (stop()) return true;
    }
    this.now = Math.max(this.now, until);
    return stop();
  }

  private before(a: Scheduled, b: Scheduled): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private pop(): Scheduled {
    const top = this.heap[0] as Scheduled;
    const last = this.heap.pop() as Scheduled;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    return top;
  }

  private up(i: number): void {
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(heap[i] as Scheduled, heap[parent] as Scheduled)) return;
      [heap[i], heap[parent]] = [heap[parent] as Scheduled, heap[i] as Scheduled];
      i = parent;
    }
  }

  private down(i: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < heap.length && this.before(heap[left] as Scheduled, heap[least] as Scheduled))
        least = left;
      if (right < heap.length && this.before(heap[right] as Scheduled, heap[least] as Scheduled))
        least = right;
      if (least === i) return;
      [heap[i], heap[least]] = [heap[least] as Scheduled, heap[i] as Scheduled];
      i = least;
    }
  }
}
