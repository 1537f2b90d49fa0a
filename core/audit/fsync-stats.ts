/**
 * How long the spool's fdatasync calls take: a count and a latency histogram, in the
 * Prometheus histogram layout (`_bucket{le}`, `_sum`, `_count`), so an operator can see
 * what strict mode's group commit costs on this disk.
 */
import type { MetricSample } from '../metrics/prometheus.ts';

/** Upper bounds in seconds: 50 µs to 1 s (a healthy SSD syncs in 0.1-2 ms). */
const BOUNDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export class FsyncStats {
  private readonly buckets = new Array<number>(BOUNDS.length).fill(0);
  count = 0;
  sumSeconds = 0;

  observe(ms: number): void {
    const s = ms / 1000;
    this.count++;
    this.sumSeconds += s;
    for (let i = 0; i < BOUNDS.length; i++) {
      if (s <= BOUNDS[i]!) {
        this.buckets[i]!++;
        return;
      }
    }
  }

  samples(prefix: string): MetricSample[] {
    let cumulative = 0;
    const values = BOUNDS.map((le, i) => {
      cumulative += this.buckets[i]!;
      return { labels: { le: String(le) }, value: cumulative };
    });
    values.push({ labels: { le: '+Inf' }, value: this.count });
    return [
      { name: `${prefix}_bucket`, help: 'Audit spool fdatasync latency (seconds), cumulative buckets.', type: 'counter', values },
      { name: `${prefix}_sum`, help: 'Total seconds spent in audit spool fdatasync.', type: 'counter', values: [{ value: Math.round(this.sumSeconds * 1e6) / 1e6 }] },
      { name: `${prefix}_count`, help: 'Audit spool fdatasync calls timed.', type: 'counter', values: [{ value: this.count }] },
    ];
  }
}
