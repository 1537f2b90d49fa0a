/**
 * The digest of failed authentications (core/audit/auth-digest.ts) on its own: the first
 * ones of an interval in full, the rest counted into one summary per source; with the spool
 * past its noise share nothing more is written in full, the drops are counted in the next
 * summary, and a summary that cannot be written carries its counts over.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthFailureDigest, FULL_PER_INTERVAL } from '../../core/audit/auth-digest.ts';
import type { AuditReceipt } from '../../core/plugin.ts';

function digest(use: { value: number }) {
  const written: Array<{ type: string; data: Record<string, unknown> }> = [];
  const receipt: AuditReceipt = { seq: 1, spooled: Promise.resolve(), durable: Promise.resolve() };
  const d = new AuthFailureDigest({ intervalMs: 60_000, spoolUse: () => use.value, write: (type, data) => (written.push({ type, data }), receipt) });
  return { d, written };
}

test('the first failures of an interval in full, the rest in one summary with counts, codes and a sample', () => {
  const { d, written } = digest({ value: 0 });
  for (let i = 0; i < 50; i++) d.note('10.0.0.1', { code: i % 2 ? 'BAD_CREDENTIAL' : 'GRANT_UNKNOWN', reason: 'x', n: i });
  d.note('10.0.0.2', { code: 'BAD_IDENTITY' });
  assert.equal(written.filter((w) => w.type === 'auth.failed').length, FULL_PER_INTERVAL + 1);
  d.flush();
  const summaries = written.filter((w) => w.type === 'auth.failed.summary');
  assert.equal(summaries.length, 1, 'only the source with failures beyond the first ones');
  assert.equal(summaries[0]!.data['source'], '10.0.0.1');
  assert.equal(summaries[0]!.data['count'], 50 - FULL_PER_INTERVAL);
  assert.deepEqual(summaries[0]!.data['codes'], { GRANT_UNKNOWN: 15, BAD_CREDENTIAL: 15 });
  assert.equal((summaries[0]!.data['sample'] as Record<string, unknown>)['n'], FULL_PER_INTERVAL);
});

test('without headroom noise is dropped and counted; a summary that cannot be written carries over', () => {
  const use = { value: 0.6 };
  const { d, written } = digest(use);
  for (let i = 0; i < 10; i++) d.note('10.0.0.9', { code: 'BAD_CREDENTIAL' });
  assert.equal(written.length, 0, 'past half the spool no failure is written in full');
  use.value = 0.8;
  d.flush();
  assert.equal(written.length, 0, 'past three quarters not even a summary');
  use.value = 0.1;
  d.note('10.0.0.9', { code: 'BAD_CREDENTIAL' });
  d.flush();
  const summary = written.find((w) => w.type === 'auth.failed.summary');
  assert.equal(summary?.data['count'], 10, 'the held-back counts arrive with the next summary');
  assert.equal(summary?.data['dropped'], 10);
  assert.equal(written.filter((w) => w.type === 'auth.failed').length, 1, 'with room again, a failure is recorded in full');
  const metrics = d.metricSamples();
  assert.equal(metrics.find((m) => m.name === 'airlock_auth_failures_dropped_total')?.values[0]?.value, 10);
});
