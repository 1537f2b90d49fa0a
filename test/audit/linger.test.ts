/**
 * Batching by age: a sink with a linger gathers records that arrive over several turns
 * into one delivery, delivers a full batch without waiting, and is flushed at close.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditSink, SinkBatch } from '../../core/plugin.ts';
import { makeKey, openPipeline, TempDirs } from './helpers.ts';

const dirs = new TempDirs();
after(() => dirs.cleanup());

function recordingSink(): AuditSink & { batches: number[][] } {
  const batches: number[][] = [];
  return { batches, deliver: async (b: SinkBatch) => void batches.push(b.records.map((r) => r.seq)) };
}

test('records arriving over several turns are delivered together; close flushes a partial batch', async () => {
  const p = await openPipeline(await dirs.make(), makeKey());
  const sink = recordingSink();
  p.attachSink('linger', sink, 50, 60_000);
  for (let i = 0; i < 5; i++) {
    await p.append({ type: 'test.event', outcome: 'ok', data: { i } }).durable;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(sink.batches.length, 0, 'a partial batch waits for its linger');
  await p.close();
  const delivered = sink.batches.flat();
  assert.ok(delivered.length >= 6, 'gateway.started, 5 events and the final checkpoint');
  assert.equal(sink.batches.length, 1, `one delivery at close, got ${JSON.stringify(sink.batches)}`);
});

test('a full batch is delivered without waiting for the linger', async () => {
  const p = await openPipeline(await dirs.make(), makeKey());
  const sink = recordingSink();
  p.attachSink('linger', sink, 10, 60_000);
  const receipts = Array.from({ length: 25 }, (_, i) => p.append({ type: 'test.event', outcome: 'ok', data: { i } }));
  await Promise.all(receipts.map((r) => r.durable));
  for (let i = 0; i < 100 && sink.batches.flat().length < 20; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(sink.batches.length >= 2, 'full batches went out before the linger ended');
  assert.ok(sink.batches.every((b) => b.length === 10), JSON.stringify(sink.batches));
  await p.close();
});
