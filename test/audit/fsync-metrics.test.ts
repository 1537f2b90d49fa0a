/** Strict mode's fdatasync count and latency histogram, as /metrics shows them. */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderPrometheus } from '../../core/metrics/prometheus.ts';
import { appendMany, makeKey, openPipeline, TempDirs } from './helpers.ts';

const temp = new TempDirs();
after(() => temp.cleanup());

it('counts and times every spool fdatasync in a cumulative histogram', async () => {
  const p = await openPipeline(await temp.make(), makeKey());
  try {
    for (let i = 0; i < 5; i++) await appendMany(p, 3);
    const text = renderPrometheus(p.metricSamples());
    const count = Number(/^airlock_audit_spool_fsync_seconds_count (\d+)$/m.exec(text)?.[1]);
    const inf = Number(/^airlock_audit_spool_fsync_seconds_bucket\{le="\+Inf"\} (\d+)$/m.exec(text)?.[1]);
    const sum = Number(/^airlock_audit_spool_fsync_seconds_sum ([\d.e-]+)$/m.exec(text)?.[1]);
    // open() syncs gateway.started, then each of the 5 durable waits needs a sync of its own.
    assert.ok(count >= 6, `fsyncs timed: ${count}`);
    assert.equal(count, p.metrics().fsyncs, 'every counted fsync is timed');
    assert.equal(inf, count);
    assert.ok(sum > 0);
    const buckets = [...text.matchAll(/^airlock_audit_spool_fsync_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => Number(m[2]));
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!, 'buckets are cumulative');
  } finally {
    await p.close();
  }
});
