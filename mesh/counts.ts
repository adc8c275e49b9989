/**
 * How often something happened since the process started, by a small set of labels ({outcome},
 * {service, code}): kept by the part that sees it happen, read by the metrics endpoint. A count
 * may also go down (connections open now). Label values must come from a bounded set — a
 * service, a status class — never a task ID or a client address.
 */
export class Counts<L extends Record<string, string>> {
  private readonly counts = new Map<string, { labels: L; value: number }>();

  add(labels: L, n = 1): void {
    const key = JSON.stringify(labels);
    const entry = this.counts.get(key);
    if (entry) entry.value += n;
    else this.counts.set(key, { labels, value: n });
  }

  entries(): Array<{ labels: L; value: number }> {
    return [...this.counts.values()];
  }
}
