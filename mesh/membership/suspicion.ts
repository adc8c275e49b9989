/**
 * Lifeguard's suspicion timer: it starts at `maxMs` and falls towards `minMs` as independent
 * members confirm the suspicion (log-scaled, reaching the minimum after `k` confirmations).
 */
export class Suspicion {
  private readonly confirmations = new Set<string>();

  constructor(
    readonly incarnation: number,
    private readonly startedAt: number,
    suspector: string,
    private readonly k: number,
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    // Our own suspicion gossiped back to us is no confirmation.
    this.confirmations.add(suspector);
  }

  /** True when the confirmation was new and moved the deadline. */
  confirm(from: string): boolean {
    if (this.confirmations.size - 1 >= this.k || this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    return true;
  }

  get deadline(): number {
    const n = this.confirmations.size - 1;
    if (this.k < 1) return this.startedAt + this.minMs;
    const fraction = Math.log(n + 1) / Math.log(this.k + 1);
    const timeout = Math.max(this.minMs, this.maxMs - fraction * (this.maxMs - this.minMs));
    return this.startedAt + Math.floor(timeout);
  }
}
