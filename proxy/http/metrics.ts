import { Counter, Histogram, Registry } from 'prom-client';

/** A worker's metrics as prom-client gives them to be summed (AggregatorRegistry.aggregate). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Latency bucket bounds (ms) of the per-service histograms; the last bucket is everything above. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
type StatusClass = (typeof STATUS_CLASSES)[number];

export interface ServiceStats {
  requests: number;
  /** Responses by status class: 1xx .. 5xx. */
  statuses: Record<StatusClass, number>;
  /** Counts per LATENCY_BUCKETS_MS bound, and one more for slower. */
  latency: number[];
}

/** What several workers saw of a service, as one (undefined: none saw anything). */
export function mergeStats(each: ServiceStats[]): ServiceStats | undefined {
  if (each.length === 0) return undefined;
  const statuses = Object.fromEntries(
    STATUS_CLASSES.map((c) => [c, 0]),
  ) as ServiceStats['statuses'];
  const latency = LATENCY_BUCKETS_MS.map(() => 0).concat(0);
  for (const stats of each) {
    for (const c of STATUS_CLASSES) statuses[c] += stats.statuses[c];
    stats.latency.forEach((n, i) => {
      latency[i] = (latency[i] ?? 0) + n;
    });
  }
  return { requests: each.reduce((sum, s) => sum + s.requests, 0), statuses, latency };
}

/**
 * What an ingress worker saw per service since it started, in prom-client metrics of the
 * worker's own registry: requests by status class and a latency histogram, labelled by service
 * only (never a client or a path, so the label sets stay bounded). The agent's /metrics adds the
 * workers' summed exposition to its own; `mesh routes` and autoscaling read one service's stats.
 */
export class IngressMetrics {
  private readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'mesh_http_requests_total',
    help: 'Requests the HTTP ingress of this node answered, by service and status class',
    labelNames: ['service', 'code'],
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'mesh_http_request_duration_seconds',
    help: 'Time from a request reaching the ingress of this node to its answer being sent',
    labelNames: ['service'],
    buckets: LATENCY_BUCKETS_MS.map((ms) => ms / 1000),
    registers: [this.registry],
  });

  record(serviceId: string, status: number, ms: number): void {
    const code = STATUS_CLASSES[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))];
    this.requests.inc({ service: serviceId, code });
    this.duration.observe({ service: serviceId }, ms / 1000);
  }

  /** The metrics as prom-client sums them over the ingress's workers (AggregatorRegistry). */
  json(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
  }

  /** Requests answered per service. */
  async requestsByService(): Promise<Record<string, number>> {
    const totals: Record<string, number> = {};
    for (const v of (await this.requests.get()).values) {
      const service = String(v.labels.service);
      totals[service] = (totals[service] ?? 0) + v.value;
    }
    return totals;
  }

  async of(serviceId: string): Promise<ServiceStats | undefined> {
    const requests = (await this.requests.get()).values.filter(
      (v) => v.labels.service === serviceId,
    );
    if (requests.length === 0) return undefined;
    const statuses = Object.fromEntries(
      STATUS_CLASSES.map((c) => [c, 0]),
    ) as ServiceStats['statuses'];
    for (const v of requests) statuses[v.labels.code as StatusClass] += v.value;
    // The histogram's buckets are cumulative (le): each bound's own count is the difference.
    const cumulative = (await this.duration.get()).values
      .filter((v) => v.labels.service === serviceId && v.metricName?.endsWith('_bucket'))
      .map((v) => v.value);
    const latency = cumulative.map((n, i) => n - (i === 0 ? 0 : (cumulative[i - 1] as number)));
    return {
      requests: requests.reduce((sum, v) => sum + v.value, 0),
      statuses,
      latency,
    };
  }
}
