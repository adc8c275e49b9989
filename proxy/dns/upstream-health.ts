/** An upstream that failed (no answer in time, or could not be sent to) is tried last for this long. */
export const SET_ASIDE_MS = 10_000;

/**
 * Which upstream resolvers to try for a query, in order (pure; the caller's clock): each in turn
 * first, so the load is shared, and one that just failed after the others until it answers again
 * or its time aside is over — never dropped, so a query still goes out when every one has failed.
 */
export class UpstreamHealth {
  private readonly asideUntil = new Map<string, number>();
  private turn = 0;

  constructor(private readonly upstreams: readonly string[]) {}

  order(now: number): string[] {
    const n = this.upstreams.length;
    const start = n === 0 ? 0 : this.turn++ % n;
    const rotated = [...this.upstreams.slice(start), ...this.upstreams.slice(0, start)];
    const aside = (upstream: string) => (this.asideUntil.get(upstream) ?? 0) > now;
    return [...rotated.filter((u) => !aside(u)), ...rotated.filter(aside)];
  }

  failed(upstream: string, now: number): void {
    this.asideUntil.set(upstream, now + SET_ASIDE_MS);
  }

  answered(upstream: string): void {
    this.asideUntil.delete(upstream);
  }
}
