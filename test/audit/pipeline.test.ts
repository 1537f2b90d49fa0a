/**
 * The audit pipeline against a real filesystem: chain continued across restarts, group
 * commit (counted fsyncs, not timing), buffered mode, spool full, torn-tail recovery,
 * sink isolation and segment clean-up.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir } from 'node:fs/promises';
import { fdatasync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAirlockError } from '../../core/errors.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import type { AuditPipeline } from '../../core/audit/pipeline.ts';
import type { AuditRecord, AuditSink, SinkBatch } from '../../core/plugin.ts';
import { appendMany, makeKey, openPipeline, spoolRecords, spoolSegments, TempDirs } from './helpers.ts';

const temp = new TempDirs();
const key = makeKey();
after(() => temp.cleanup());

class MemorySink implements AuditSink {
  records: AuditRecord[] = [];
  batches = 0;
  async deliver(batch: SinkBatch): Promise<void> {
    this.batches++;
    this.records.push(...batch.records);
  }
}

const realFdatasync = (fd: number) => new Promise<void>((res, rej) => fdatasync(fd, (e) => (e ? rej(e) : res())));

async function until(cond: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A cleanly closed spool of `records` records (plus its start and end) whose segment then got `tail`, as a crash mid-write leaves it. */
async function spoolEndingIn(records: number, tail: Buffer): Promise<{ dataDir: string; segment: string }> {
  const dataDir = await temp.make();
  const p = await openPipeline(dataDir, key);
  await appendMany(p, records);
  await p.close();
  const [segment] = await spoolSegments(dataDir);
  await appendFile(segment!, tail);
  return { dataDir, segment: segment! };
}

async function verifySpool(dataDir: string) {
  return verifyAuditFiles(await spoolSegments(dataDir), { publicKeys: [key.publicJwk] });
}

describe('audit pipeline', () => {
  it('continues one chain across a restart', async () => {
    const dataDir = await temp.make();
    let p = await openPipeline(dataDir, key);
    await appendMany(p, 20, 'first');
    await p.close();
    p = await openPipeline(dataDir, key);
    await appendMany(p, 20, 'second');
    await p.close();
    const recs = await spoolRecords(dataDir);
    assert.deepEqual(recs.map((r) => r.seq), recs.map((_, i) => i + 1));
    assert.deepEqual(recs.filter((r) => r.type === 'gateway.started').map((r) => r.seq), [1, 23]);
    assert.equal(recs[22]!.prev, recs[21]!.hash);
    assert.equal(recs[21]!.type, 'checkpoint');
    const v = await verifySpool(dataDir);
    assert.equal(v.failure, undefined);
    assert.equal(v.records, 44);
    assert.equal(v.checkpoints, 2);
  });

  it('writes all records of one tick in one write and one fsync (strict)', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key);
    const before = p.metrics();
    const receipts = Array.from({ length: 50 }, (_, i) => p.append({ type: 'aws.request', data: { i }, outcome: 'ok' }));
    assert.deepEqual(receipts.map((r) => r.seq), receipts.map((_, i) => before.lastSeq + 1 + i));
    await Promise.all(receipts.map((r) => r.durable));
    const m = p.metrics();
    assert.equal(m.writes - before.writes, 1);
    assert.equal(m.fsyncs - before.fsyncs, 1);
    assert.equal(m.syncedSeq, before.lastSeq + 50);
    await p.close();
  });

  it('writes a turn of multi-byte text and a turn larger than the reused encode buffer byte for byte', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key);
    const texts = ['select \'ünïcødé\', \'日本語\', \'🙂\'', 'x'.repeat(70 * 1024), '€'.repeat(30 * 1024)];
    const receipts = texts.map((sql) => p.append({ type: 'pg.query', data: { sql }, outcome: 'ok' }));
    await Promise.all(receipts.map((r) => r.durable));
    const small = p.append({ type: 'pg.query', data: { sql: 'select 2 -- after the large turn' }, outcome: 'ok' });
    await small.durable;
    await p.close();
    const recs = await spoolRecords(dataDir);
    const bySeq = new Map(recs.map((r) => [r.seq, r]));
    texts.forEach((sql, i) => assert.equal(bySeq.get(receipts[i]!.seq)?.data?.sql, sql));
    assert.equal(bySeq.get(small.seq)?.data?.sql, 'select 2 -- after the large turn');
    const v = await verifySpool(dataDir);
    assert.equal(v.failure, undefined);
  });

  it('makes records written during an fsync wait for the next one, sharing it (group commit)', async () => {
    const dataDir = await temp.make();
    let calls = 0;
    let gate: Promise<void> | undefined;
    let release!: () => void;
    const p = await openPipeline(dataDir, key, {
      fsync: async (fd) => {
        calls++;
        if (gate) await gate;
        await realFdatasync(fd);
      },
    });
    gate = new Promise((r) => (release = r));
    const before = p.metrics();
    const callsBefore = calls;
    const a = p.append({ type: 't', data: { n: 'a' }, outcome: 'ok' });
    await a.spooled;
    assert.equal(calls - callsBefore, 1, 'the first write starts an fsync');
    const b = p.append({ type: 't', data: { n: 'b' }, outcome: 'ok' });
    await b.spooled;
    const c = p.append({ type: 't', data: { n: 'c' }, outcome: 'ok' });
    await c.spooled;
    const durable = new Set<string>();
    void a.durable.then(() => durable.add('a'));
    void b.durable.then(() => durable.add('b'));
    void c.durable.then(() => durable.add('c'));
    await new Promise((r) => setImmediate(r));
    assert.equal(durable.size, 0, 'nothing is durable while the fsync is held');
    assert.equal(calls - callsBefore, 1, 'no second fsync starts while one runs');
    gate = undefined;
    release();
    await a.durable;
    assert.equal(durable.has('b') || durable.has('c'), false, 'b and c were written after the first fsync started');
    await Promise.all([b.durable, c.durable]);
    const m = p.metrics();
    assert.equal(m.writes - before.writes, 3);
    assert.equal(m.fsyncs - before.fsyncs, 2, 'b and c share one fsync');
    assert.equal(calls - callsBefore, 2);
    await p.close();
  });

  it('holds the next group commit a moment for the session the last one released, so it joins the others (gathered group commit)', async () => {
    const dataDir = await temp.make();
    const covered: number[] = [];
    let gate: Promise<void> | undefined;
    let release!: () => void;
    let p!: Awaited<ReturnType<typeof openPipeline>>;
    p = await openPipeline(dataDir, key, {
      fsync: async (fd) => {
        const from = p?.metrics().syncedSeq ?? 0;
        const to = p?.metrics().lastSeq ?? 0;
        covered.push(to - from);
        if (gate) await gate;
        await realFdatasync(fd);
      },
    });
    gate = new Promise((r) => (release = r));
    const start = covered.length;
    // Session A's record starts an fsync; B's and C's are written while it runs.
    const a = p.append({ type: 't', data: { n: 'a' }, outcome: 'ok' });
    await a.spooled;
    const b = p.append({ type: 't', data: { n: 'b' }, outcome: 'ok' });
    await b.spooled;
    const c = p.append({ type: 't', data: { n: 'c' }, outcome: 'ok' });
    await c.spooled;
    gate = undefined;
    release();
    await a.durable;
    // A is released and comes straight back: its next record joins B's and C's fsync
    // instead of B and C syncing alone and A waiting for a third one.
    assert.equal(covered.length - start, 1, 'the next fsync waits for the released session');
    const a2 = p.append({ type: 't', data: { n: 'a2' }, outcome: 'ok' });
    await Promise.all([b.durable, c.durable, a2.durable]);
    assert.deepEqual(covered.slice(start), [1, 3], 'one fsync for A, then one for B, C and A again');
    // Nobody else is coming: a lone record after the window starts its fsync at once.
    await new Promise((r) => setTimeout(r, 5));
    const before = covered.length;
    const lone = p.append({ type: 't', data: { n: 'lone' }, outcome: 'ok' });
    await lone.spooled;
    assert.equal(covered.length - before, 1, 'a lone record starts its fsync at once');
    await lone.durable;
    await p.close();
  });

  it('in strict mode an outcome nobody waits on starts no fsync of its own: the next group commit (or a short timer) covers it', async () => {
    const dataDir = await temp.make();
    let calls = 0;
    const p = await openPipeline(dataDir, key, { fsync: async (fd) => (calls++, realFdatasync(fd)) });
    const start = calls;
    const outcome = p.append({ type: 'pg.result', data: { rows: 1 }, outcome: 'ok', lazy: true });
    await outcome.spooled;
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, start, 'a lazy record alone starts no fsync at once');
    // The next request record (someone awaits its durable) starts one sync covering both.
    const request = p.append({ type: 'pg.query', data: { sql: 'select 1' }, outcome: 'ok' });
    await request.durable;
    await outcome.durable;
    assert.equal(calls, start + 1, 'one fsync for the request and the outcome before it');
    assert.ok(p.metrics().syncedSeq >= request.seq);
    // Alone, a lazy record is still synced soon, by the timer.
    const later = p.append({ type: 'pg.result', data: { rows: 2 }, outcome: 'ok', lazy: true });
    await until(() => p.metrics().syncedSeq >= later.seq, 'the lazy sync');
    assert.equal(calls, start + 2);
    await p.close();
  });

  it('in buffered mode resolves durable at spool time and syncs in the background', async () => {
    const dataDir = await temp.make();
    let calls = 0;
    const p = await openPipeline(dataDir, key, { durability: 'buffered', fsync: async (fd) => (calls++, realFdatasync(fd)) });
    const callsAtStart = calls;
    const r = p.append({ type: 't', outcome: 'ok' });
    await r.durable;
    assert.equal(calls, callsAtStart, 'durable did not wait for an fsync');
    await until(() => p.metrics().syncedSeq >= r.seq, 'the periodic fsync');
    assert.equal(calls > callsAtStart, true);
    await p.close();
  });

  it('reports full beyond spoolMaxBytes, keeps what it wrote, and recovers once sinks drain', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key, { spoolMaxBytes: 8192, segmentMaxBytes: 2048 });
    assert.equal(p.full, false);
    let n = 0;
    while (!p.full) {
      assert.ok(n < 200, 'spool never reported full');
      await appendMany(p, 1);
      n++;
    }
    const m = p.metrics();
    assert.equal(m.spoolBytes >= 8192, true);
    const recs = await spoolRecords(dataDir);
    assert.equal(recs.length, m.lastSeq, 'every record written before full is kept');
    assert.equal((await verifySpool(dataDir)).ok, true);
    const sink = new MemorySink();
    p.attachSink('mem', sink);
    await until(() => p.metrics().sinks[0]!.cursor === p.metrics().lastSeq, 'sink drain');
    await until(() => !p.full, 'segments deleted after delivery');
    assert.equal(p.metrics().spoolBytes < 8192, true);
    assert.deepEqual(sink.records.map((r) => r.seq), recs.map((r) => r.seq));
    await p.close();
  });

  it('rejects receipts and reports itself full when the spool cannot be synced', async () => {
    const dataDir = await temp.make();
    let broken = false;
    const p = await openPipeline(dataDir, key, {
      fsync: async (fd) => {
        if (broken) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
        await realFdatasync(fd);
      },
    });
    broken = true;
    const r = p.append({ type: 't', outcome: 'ok' });
    await r.spooled;
    await assert.rejects(r.durable, (e) => isAirlockError(e, 'AUDIT_UNAVAILABLE') && /fsync failed/.test(e.message));
    assert.equal(p.full, true);
    assert.equal(p.metrics().healthy, false);
    const later = p.append({ type: 't', outcome: 'ok' });
    await assert.rejects(later.spooled, (e) => isAirlockError(e, 'AUDIT_UNAVAILABLE'));
    await assert.rejects(later.durable, (e) => isAirlockError(e, 'AUDIT_UNAVAILABLE'));
    await p.close();
  });

  it('cuts a torn last line after a crash, records the cut, and continues the chain', async () => {
    const torn = '{"v":1,"seq":13,"ts":"2026-01-01T00:00:00.000Z","type":"pg.qu';
    const { dataDir, segment } = await spoolEndingIn(10, Buffer.from(torn));
    let p = await openPipeline(dataDir, key);
    await appendMany(p, 5);
    await p.close();
    const recs = await spoolRecords(dataDir);
    const restarted = recs.find((r) => r.seq === 13)!;
    assert.equal(restarted.type, 'gateway.started');
    assert.deepEqual((restarted.data as { spoolRecovery: unknown }).spoolRecovery, [{ file: segment, bytes: torn.length, lines: 1 }]);
    const v = await verifySpool(dataDir);
    assert.equal(v.failure, undefined);
    assert.equal(v.lastSeq, recs.length);
  });

  it('preallocates the segment being written: readers see only records, close cuts the zeros, a crash leaves no "torn" report', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key);
    const sink = new MemorySink();
    await appendMany(p, 20);
    const [segment] = await spoolSegments(dataDir);
    const { readFile, stat } = await import('node:fs/promises');
    const live = await readFile(segment!);
    const written = live.indexOf(0);
    assert.ok(written > 0 && live.length > written, `NUL bytes written ahead of the records (file ${live.length}, records ${written})`);
    assert.equal(live.subarray(written).every((b) => b === 0), true, 'everything past the records is NUL');
    assert.equal(live[written - 1], 0x0a, 'the records end with a whole line');
    // A sink reading from the start gets every record from disk and nothing of the zeros.
    p.attachSink('late', sink);
    await until(() => sink.records.length >= 21, 'the sink catches up');
    assert.deepEqual(sink.records.map((r) => r.seq), Array.from({ length: sink.records.length }, (_, i) => i + 1));
    // verify reads a live segment (its NUL tail ends the lines)
    assert.equal((await verifySpool(dataDir)).failure, undefined);
    // A crash (never closed): recovery cuts the zeros without calling them torn.
    const crashedSize = (await stat(segment!)).size;
    const p2 = await openPipeline(dataDir, key);
    const restarted = (await spoolRecords(dataDir)).find((r) => r.type === 'gateway.started' && r.seq > 21)!;
    assert.equal((restarted.data as { spoolRecovery?: unknown }).spoolRecovery, undefined, `no torn tail reported (the crashed file was ${crashedSize} bytes)`);
    await appendMany(p2, 3);
    await p2.close();
    const closed = await readFile(segment!);
    assert.equal(closed.indexOf(0), -1, 'a closed segment holds no NUL bytes');
    assert.equal(closed.at(-1), 0x0a);
    const v = await verifySpool(dataDir);
    assert.equal(v.failure, undefined);
    // (`p` stays as a crashed process leaves it: never closed; its timers are unref'd.)
  });

  it('a torn line before the preallocated zeros is cut and reported by its own length', async () => {
    const torn = '{"v":1,"seq":8,"ts":"2026-01-01T00:00:00.000Z","type":"pg.qu';
    const { dataDir, segment } = await spoolEndingIn(5, Buffer.concat([Buffer.from(torn), Buffer.alloc(4096)]));
    const p = await openPipeline(dataDir, key);
    await p.close();
    const restarted = (await spoolRecords(dataDir)).find((r) => r.seq === 8)!;
    assert.equal(restarted.type, 'gateway.started');
    assert.deepEqual((restarted.data as { spoolRecovery: unknown }).spoolRecovery, [{ file: segment, bytes: torn.length, lines: 1 }]);
  });

  it('reads a segment up to its first NUL: a valid record a crash left beyond a NUL gap is cut and counted', async () => {
    const { readFile } = await import('node:fs/promises');
    const { dataDir, segment } = await spoolEndingIn(5, Buffer.alloc(0));
    // A block that reached the disk before the one in front of it: zeros where the earlier
    // block was, then the end of a line and a whole, valid record.
    const lastLine = (await readFile(segment, 'utf8')).trimEnd().split('\n').at(-1)!;
    const lineEnd = 'ok"}\n';
    await appendFile(segment, Buffer.concat([Buffer.alloc(4096), Buffer.from(lineEnd + lastLine + '\n'), Buffer.alloc(1024)]));
    const p = await openPipeline(dataDir, key);
    await p.close();
    const restarted = (await spoolRecords(dataDir)).find((r) => r.type === 'gateway.started' && r.seq > 1)!;
    assert.equal(restarted.seq, 8, 'the chain continues after the last record before the gap');
    assert.deepEqual((restarted.data as { spoolRecovery: unknown }).spoolRecovery, [{ file: segment, bytes: 4096 + lineEnd.length + lastLine.length + 1, lines: 2 }]);
    assert.equal((await readFile(segment)).indexOf(0), -1, 'nothing of the gap or beyond it is kept');
    assert.equal((await verifySpool(dataDir)).failure, undefined);
  });

  it('cuts whole garbage lines at the tail too', async () => {
    const dataDir = await temp.make();
    let p = await openPipeline(dataDir, key);
    await appendMany(p, 3);
    await p.close();
    const [segment] = await spoolSegments(dataDir);
    await appendFile(segment!, '\0\0\0\0\n{"v":1,"seq":7}\n');
    p = await openPipeline(dataDir, key);
    await p.close();
    const v = await verifySpool(dataDir);
    assert.equal(v.failure, undefined);
    const recs = await spoolRecords(dataDir);
    assert.equal((recs[5]!.data as { spoolRecovery: Array<{ lines: number }> }).spoolRecovery[0]!.lines, 2);
  });

  it("never lets one sink's failures delay another, and the failed sink loses nothing", async () => {
    const dataDir = await temp.make();
    let p = await openPipeline(dataDir, key, { retryBaseMs: 20, retryMaxMs: 100, drainTimeoutMs: 200 });
    const good = new MemorySink();
    const bad: AuditSink = { deliver: async () => Promise.reject(new Error('destination down')) };
    p.attachSink('bad', bad);
    p.attachSink('good', good);
    await appendMany(p, 100);
    await until(() => good.records.length === p.metrics().lastSeq, 'good sink delivery');
    await until(() => p.metrics().sinks.find((s) => s.id === 'bad')!.failures >= 2, 'bad sink retries');
    const badMetrics = p.metrics().sinks.find((s) => s.id === 'bad')!;
    assert.equal(badMetrics.cursor, 0);
    assert.equal(badMetrics.lastError, 'destination down');
    assert.equal(p.metrics().spoolDepth, p.metrics().lastSeq);
    await p.close();
    // The destination comes back after a restart: it gets everything, from seq 1.
    p = await openPipeline(dataDir, key);
    const recovered = new MemorySink();
    p.attachSink('bad', recovered);
    await appendMany(p, 1);
    await until(() => recovered.records.length === p.metrics().lastSeq, 'recovered sink delivery');
    assert.deepEqual(recovered.records.map((r) => r.seq), recovered.records.map((_, i) => i + 1));
    await p.close();
  });

  it('reads older records from segment files for a late sink, deletes delivered segments, never the newest', async () => {
    const dataDir = await temp.make();
    let p: AuditPipeline = await openPipeline(dataDir, key, { segmentMaxBytes: 256 * 1024, checkpointEvery: 5000 });
    for (let i = 0; i < 5; i++) await appendMany(p, 5000, `burst${i}`);
    await p.close();
    const segmentsBefore = (await spoolSegments(dataDir)).length;
    assert.equal(segmentsBefore > 3, true);
    p = await openPipeline(dataDir, key, { segmentMaxBytes: 256 * 1024 });
    const sink = new MemorySink();
    p.attachSink('late', sink, 700);
    await until(() => p.metrics().sinks[0]!.cursor === p.metrics().lastSeq, 'late sink drain', 60_000);
    assert.deepEqual(sink.records.map((r) => r.seq), sink.records.map((_, i) => i + 1));
    assert.equal(sink.batches >= Math.ceil(sink.records.length / 700), true);
    await until(() => p.metrics().segments === 1, 'segment deletion');
    const left = await spoolSegments(dataDir);
    assert.equal(left.length, 1);
    await p.close();
    // A new sink starts from the oldest record still in the spool.
    const oldest = (await spoolRecords(dataDir))[0]!.seq;
    p = await openPipeline(dataDir, key);
    const fresh = new MemorySink();
    p.attachSink('fresh', fresh);
    await appendMany(p, 1);
    await until(() => fresh.records.length > 0 && fresh.records.at(-1)!.seq === p.metrics().lastSeq, 'fresh sink');
    assert.equal(fresh.records[0]!.seq, oldest);
    await p.close();
    assert.deepEqual((await readdir(join(dataDir, 'spool', 'cursors'))).filter((n) => n.endsWith('.json')).length, 2);
  });

  it('whenSpooled calls back once, right after the one write of the turn that carries the records, and at once when nothing waits', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key);
    const [segment] = await spoolSegments(dataDir);
    const sizeNow = () => readFileSync(segment!, 'utf8').replace(/\0+$/, '').length;
    const before = sizeNow();
    const seen: Array<{ error: Error | undefined; written: boolean }> = [];
    const a = p.append({ type: 'pg.query', data: { sql: 'select 1' }, outcome: 'ok' });
    p.whenSpooled((error) => seen.push({ error, written: readFileSync(segment!, 'utf8').includes('"seq":' + a.seq + ',') }));
    const b = p.append({ type: 'pg.query', data: { sql: 'select 2' }, outcome: 'ok' });
    p.whenSpooled((error) => seen.push({ error, written: readFileSync(segment!, 'utf8').includes('"seq":' + b.seq + ',') }));
    assert.equal(seen.length, 0, 'not before the write');
    assert.equal(sizeNow(), before, 'nothing written yet in this turn');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, [{ error: undefined, written: true }, { error: undefined, written: true }]);
    // Everything appended is written: called at once.
    let now = false;
    p.whenSpooled(() => (now = true));
    assert.equal(now, true);
    await p.close();
    let closed: Error | undefined;
    p.whenSpooled((error) => (closed = error));
    assert.ok(closed !== undefined && isAirlockError(closed, 'AUDIT_UNAVAILABLE'));
  });

  it('refuses records after close', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key);
    await p.close();
    const r = p.append({ type: 't', outcome: 'ok' });
    await assert.rejects(r.spooled, (e) => isAirlockError(e, 'AUDIT_UNAVAILABLE'));
    assert.equal(p.full, true);
  });

  it('signs checkpoints with the gateway key as loaded from its JWK, verifiable with the published public JWK', async () => {
    const { loadOrCreateGatewayIdentity } = await import('../../core/identity/gateway-key.ts');
    const identity = await loadOrCreateGatewayIdentity(await temp.make());
    const jwk = identity.key.publicJwk;
    const dataDir = await temp.make();
    const p = await (await import('../../core/audit/pipeline.ts')).AuditPipeline.open({
      dataDir,
      durability: 'buffered',
      gatewayId: 'gw-web',
      signingKey: { privateKey: identity.key.signingKey, kid: identity.key.kid },
      log: (await import('./helpers.ts')).silentLog,
    });
    await appendMany(p, 3);
    await p.close();
    const v = await verifyAuditFiles(await spoolSegments(dataDir), { publicKeys: [jwk], gatewayId: 'gw-web' });
    assert.equal(v.failure, undefined);
    assert.equal(v.checkpoints, 1);
  });
});
