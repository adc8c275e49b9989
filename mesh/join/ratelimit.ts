export interface RateLimitOptions {
  /** Attempts allowed at once from one source. */
  burst: number;
  /** Attempts regained per second. */
  refillPerSecond: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

// Forget sources that have been quiet long enough to be full again, past this many.
const MAX_TRACKED = 10_000;

/** A token bucket per source address. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions) {
    this.now = options.now ?? Date.now;
  }

  take(source: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(source) ?? { tokens: this.options.burst, at: now };
    const refilled = ((now - bucket.at) / 1000) * this.options.refillPerSecond;
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + refilled);
    bucket.at = now;
    this.buckets.set(source, bucket);
    if (this.buckets.size > MAX_TRACKED) this.prune(now);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private prune(now: number): void {
    const fullAfterMs = (this.options.burst / this.options.refillPerSecond) * 1000;
    for (const [source, bucket] of this.buckets) {
      if (now - bucket.at > fullAfterMs) this.buckets.delete(source);
    }
  }
}
