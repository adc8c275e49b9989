/** Latency bucket bounds (ms) of the per-service histograms; the last bucket is everything above. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

export interface ServiceStats {
  requests: number;
  /** Responses by status class: 1xx .. 5xx. */
  statuses: Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>;
  /** Counts per LATENCY_BUCKETS_MS bound, and one more for slower. */
  latency: number[];
}

/**
 * What the ingress saw per service since the agent started, kept in memory: request counts,
 * status classes and a latency histogram (they will feed metrics and autoscaling).
 */
export class IngressMetrics {
  private readonly services = new Map<string, ServiceStats>();

  record(serviceId: string, status: number, ms: number): void {
    let stats = this.services.get(serviceId);
    if (!stats) {
      stats = {
        requests: 0,
        statuses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
        latency: new Array(LATENCY_BUCKETS_MS.length + 1).fill(0),
      };
      this.services.set(serviceId, stats);
    }
    stats.requests += 1;
    const klass =
      `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx` as keyof ServiceStats['statuses'];
    stats.statuses[klass] += 1;
    const bucket = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
    const at = bucket < 0 ? LATENCY_BUCKETS_MS.length : bucket;
    stats.latency[at] = (stats.latency[at] ?? 0) + 1;
  }

  of(serviceId: string): ServiceStats | undefined {
    return this.services.get(serviceId);
  }
}
