/**
 * The sink conformance suite: one set of behaviours every audit sink must show when driven
 * by the real audit pipeline. A sink's test file calls `runSinkConformance(name, makeSink)`;
 * `makeSink` gives a fresh destination each time, a way to read back what it stored, and
 * a cleanup.
 *
 * Checked: order preserved; a runner restart resumes from the cursor; a redelivery after a
 * lost cursor and a sink that fails N times (before or after storing) lose nothing; after
 * de-duplication by seq nothing is duplicated and nothing missing; and the read-back
 * passes the same chain and checkpoint checks as `airlock audit verify`.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { AuditRecord, AuditSink, SinkBatch } from '../../core/plugin.ts';
import type { AuditPipeline } from '../../core/audit/pipeline.ts';
import { CursorStore } from '../../core/audit/cursors.ts';
import { verifyRecords } from '../../core/audit/verify.ts';
import { appendMany, makeKey, openPipeline, TempDirs, type TestKey } from '../audit/helpers.ts';

export interface SinkUnderTest {
  sink: AuditSink;
  /** Every record the destination holds, in the destination's own order. */
  readBack(): Promise<AuditRecord[]>;
  cleanup(): Promise<void>;
}

const SINK_ID = 'conformance';
const MAX_BATCH = 37;

export function runSinkConformance(name: string, makeSink: () => Promise<SinkUnderTest>): void {
  describe(`audit sink conformance: ${name}`, () => {
    const temp = new TempDirs();
    const key = makeKey('conformance-key');
    const made: SinkUnderTest[] = [];
    after(async () => {
      for (const m of made) await m.cleanup();
      await temp.cleanup();
    });

    async function fresh(): Promise<{ under: SinkUnderTest; dataDir: string }> {
      const under = await makeSink();
      made.push(under);
      return { under, dataDir: await temp.make('airlock-conf-') };
    }

    const open = (dataDir: string) =>
      openPipeline(dataDir, key, { checkpointEvery: 50, retryBaseMs: 10, retryMaxMs: 50, drainTimeoutMs: 60_000 });

    it('delivers every record in order and the read-back verifies', async () => {
      const { under, dataDir } = await fresh();
      const p = await open(dataDir);
      const recorder = new RecordingSink(under.sink, { forwardClose: true });
      p.attachSink(SINK_ID, recorder, MAX_BATCH);
      await appendInTurns(p, 300);
      const lastSeq = p.metrics().lastSeq + 1; // + the checkpoint written at close
      await p.close();
      assert.equal(recorder.closed, true, 'the pipeline closes the sink');
      const back = await under.readBack();
      assertInOrder(back);
      await assertComplete(back, lastSeq, key);
      assert.equal(recorder.batches.every((b) => b.length <= MAX_BATCH), true, 'batches respect maxBatch');
    });

    it('resumes from the cursor after a runner restart, sending nothing twice', async () => {
      const { under, dataDir } = await fresh();
      let p = await open(dataDir);
      const first = new RecordingSink(under.sink);
      p.attachSink(SINK_ID, first, MAX_BATCH);
      await appendInTurns(p, 120);
      await p.close();
      const firstLast = first.seqs.at(-1)!;
      assert.equal(firstLast, p.metrics().lastSeq, 'drained at close');

      p = await open(dataDir);
      const second = new RecordingSink(under.sink);
      p.attachSink(SINK_ID, second, MAX_BATCH);
      await appendInTurns(p, 120);
      const lastSeq = p.metrics().lastSeq + 1;
      await p.close();
      await under.sink.close?.();
      assert.equal(second.seqs[0], firstLast + 1, 'the restarted runner starts right after its cursor');
      assertNoRepeats([...first.seqs, ...second.seqs]);
      await assertComplete(await under.readBack(), lastSeq, key);
    });

    it('tolerates a batch delivered again after a lost cursor', async () => {
      const { under, dataDir } = await fresh();
      let p = await open(dataDir);
      p.attachSink(SINK_ID, new RecordingSink(under.sink), MAX_BATCH);
      await appendInTurns(p, 150);
      await p.close();
      // As if the gateway crashed before saving the last cursors.
      await new CursorStore(join(dataDir, 'spool', 'cursors')).write(SINK_ID, 40);

      p = await open(dataDir);
      const second = new RecordingSink(under.sink);
      p.attachSink(SINK_ID, second, MAX_BATCH);
      await appendInTurns(p, 30);
      const lastSeq = p.metrics().lastSeq + 1;
      await p.close();
      await under.sink.close?.();
      assert.equal(second.seqs[0], 41, 'redelivery started from the rewound cursor');
      await assertComplete(await under.readBack(), lastSeq, key);
    });

    it('loses nothing when the sink fails several times, before or after storing, then recovers', async () => {
      const { under, dataDir } = await fresh();
      const p = await open(dataDir);
      // Fail before storing, after storing (the acknowledgement is lost), and before again.
      const flaky = new RecordingSink(under.sink, { forwardClose: true, failures: ['before', 'after', 'before', 'after'] });
      p.attachSink(SINK_ID, flaky, MAX_BATCH);
      await appendInTurns(p, 200);
      await until(() => flaky.failuresLeft === 0, 'all injected failures used');
      const m = p.metrics().sinks.find((s) => s.id === SINK_ID)!;
      assert.equal(m.failures >= 4, true);
      assert.equal(m.lastError, 'injected sink failure');
      const lastSeq = p.metrics().lastSeq + 1;
      await p.close();
      await assertComplete(await under.readBack(), lastSeq, key);
    });
  });
}

/** Wraps a sink: records what it was given and injects failures. */
class RecordingSink implements AuditSink {
  seqs: number[] = [];
  batches: number[][] = [];
  closed = false;
  private failures: Array<'before' | 'after'>;

  constructor(
    private readonly inner: AuditSink,
    private readonly opts: { forwardClose?: boolean; failures?: Array<'before' | 'after'> } = {},
  ) {
    this.failures = [...(opts.failures ?? [])];
  }

  get failuresLeft(): number {
    return this.failures.length;
  }

  async deliver(batch: SinkBatch): Promise<void> {
    const fail = this.failures[0];
    if (fail === 'before') {
      this.failures.shift();
      throw new Error('injected sink failure');
    }
    await this.inner.deliver(batch);
    if (fail === 'after') {
      this.failures.shift();
      throw new Error('injected sink failure');
    }
    const seqs = batch.records.map((r) => r.seq);
    this.batches.push(seqs);
    this.seqs.push(...seqs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.opts.forwardClose) await this.inner.close?.();
  }
}

/** Appends `n` records spread over several event-loop turns and batches. */
async function appendInTurns(p: AuditPipeline, n: number): Promise<void> {
  let done = 0;
  let turn = 0;
  while (done < n) {
    const k = Math.min(n - done, 1 + (turn++ % 17));
    await appendMany(p, k, `turn${turn}`);
    done += k;
  }
  p.append({ type: 'policy.violation', agent: 'local:bot', data: { note: 'ünïcødé ✓ "quotes" \\ back\nslash', nested: { z: 1, a: [1, 2] } }, outcome: 'denied' });
}

/** First occurrences of each seq appear in increasing order (re-sent records may repeat). */
function assertInOrder(records: AuditRecord[]): void {
  const seen = new Set<number>();
  let max = 0;
  for (const r of records) {
    if (seen.has(r.seq)) continue;
    assert.ok(r.seq > max, `seq ${r.seq} arrived after seq ${max}`);
    seen.add(r.seq);
    max = r.seq;
  }
}

function assertNoRepeats(seqs: number[]): void {
  assert.equal(new Set(seqs).size, seqs.length, 'a record was delivered twice');
}

/** Dedupe by seq (copies must be identical), then 1..lastSeq with nothing missing, verified. */
async function assertComplete(records: AuditRecord[], lastSeq: number, key: TestKey): Promise<void> {
  const bySeq = new Map<number, AuditRecord>();
  for (const r of records) {
    const prior = bySeq.get(r.seq);
    if (prior) assert.deepEqual(r, prior, `two different records with seq ${r.seq}`);
    else bySeq.set(r.seq, r);
  }
  const unique = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const missing: number[] = [];
  for (let s = 1; s <= lastSeq; s++) if (!bySeq.has(s)) missing.push(s);
  assert.deepEqual(missing.slice(0, 20), [], `records missing (${missing.length})`);
  assert.equal(unique.at(-1)!.seq, lastSeq, 'no records beyond the last one appended');
  const v = await verifyRecords(unique, { publicKeys: [key.publicJwk] });
  assert.equal(v.failure, undefined);
  assert.equal(v.checkpoints >= 2, true);
}

async function until(cond: () => boolean, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
