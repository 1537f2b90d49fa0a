/**
 * Issue 11 item 3: the audit's tail can no longer be cut or rewritten undetected.
 * - the pipeline signs a checkpoint at least every `checkpointIntervalMs` while records
 *   are added (inline, and by timer for an idle tail) and keeps `spool/head.json` current;
 * - `audit verify` fails a log whose tail was rewritten with the chain recomputed (its
 *   checkpoints necessarily dropped), reports the unsigned tail and its time span;
 * - `audit verify --gateway` reports a truncated tail against the live gateway's signed
 *   head (`GET /v1/audit/head`), and a rewritten last record against the gateway's own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { recordHash } from '../../core/audit/canonical.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { runAuditVerify } from '../../core/cli/audit-verify.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { startTestGateway } from '../harness/gateway.ts';
import { echoPlugin } from '../core/fixtures/echo-plugin.ts';
import { appendMany, makeKey, openPipeline, readJsonl, spoolRecords, spoolSegments, TempDirs, type TestKey } from './helpers.ts';

const temp = new TempDirs();
let key: TestKey;
let work: string;
before(async () => {
  key = makeKey();
  work = await temp.make();
});
after(() => temp.cleanup());

function rechain(recs: AuditRecord[], from: number): AuditRecord[] {
  const out = recs.map((r) => ({ ...r }));
  for (let i = from; i < out.length; i++) {
    if (i > 0) out[i]!.prev = out[i - 1]!.hash;
    out[i]!.hash = recordHash(out[i]!);
  }
  return out;
}

async function writeLog(name: string, recs: AuditRecord[]): Promise<string> {
  const path = join(work, name);
  await writeFile(path, recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

/** A real log written over ~1.2 s of record time with a 200 ms checkpoint interval. */
async function loggedOverTime(): Promise<AuditRecord[]> {
  const dataDir = await temp.make();
  const p = await openPipeline(dataDir, key, { checkpointIntervalMs: 200 });
  for (let i = 0; i < 12; i++) {
    await appendMany(p, 3, `round ${i}`);
    await sleep(100);
  }
  await p.close();
  return spoolRecords(dataDir);
}

describe('time-based checkpoints', () => {
  it('signs while records are added, so no unsigned stretch spans the interval, and the log verifies', async () => {
    const recs = await loggedOverTime();
    const checkpoints = recs.filter((r) => r.type === 'checkpoint');
    // 12 rounds over ~1.2 s at 200 ms: far more than the one at close (checkpointEvery is 1000).
    assert.ok(checkpoints.length >= 4, `checkpoints written: ${checkpoints.length}`);
    let stretchStart: number | undefined;
    for (const r of recs) {
      const t = Date.parse(r.ts);
      if (r.type === 'checkpoint') stretchStart = undefined;
      else {
        stretchStart ??= t;
        assert.ok(t - stretchStart < 200, `seq ${r.seq} is ${t - stretchStart} ms into an unsigned stretch`);
      }
    }
    const path = await writeLog('over-time.jsonl', recs);
    const result = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(result.ok, true, JSON.stringify(result.failure));
    assert.equal(result.checkpointIntervalMs, 200, 'the interval is learnt from the signed checkpoints');
    assert.equal(result.unsignedTail, 0);
  });

  it('signs an idle tail by timer and keeps spool/head.json current while running', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key, { checkpointIntervalMs: 150, durability: 'buffered' });
    try {
      const seqs = await appendMany(p, 5);
      await sleep(600);
      const recs = await spoolRecords(dataDir);
      const after5 = recs.filter((r) => r.seq > seqs.at(-1)!);
      assert.equal(after5[0]?.type, 'checkpoint', 'an idle tail is signed without waiting for close');
      const head = JSON.parse(await readFile(join(dataDir, 'spool', 'head.json'), 'utf8')) as { seq: number; hash: string };
      assert.ok(head.seq >= seqs.at(-1)!, `head.json at seq ${head.seq} while the gateway runs`);
      assert.equal(head.hash, recs.find((r) => r.seq === head.seq)?.hash);
      const live = await p.head();
      assert.equal(live.seq, recs.at(-1)!.seq);
      assert.equal(live.unsignedRecords, 0);
      assert.equal(live.checkpoint?.seq, after5[0]!.seq);
    } finally {
      await p.close();
    }
  });

  it('signs the tail a crash left before the restarted gateway starts a new stretch', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key, { checkpointIntervalMs: 60_000 });
    await appendMany(p, 3);
    // Simulate a crash: the pipeline is never closed (no final checkpoint); reopen the spool.
    const files = await spoolSegments(dataDir);
    const before = (await readJsonl(files.at(-1)!)).length;
    // (`p` is left as a crashed process leaves it: never closed; its timer is unref'd.)
    const p2 = await openPipeline(dataDir, key, { checkpointIntervalMs: 60_000 });
    await p2.close();
    const recs = await spoolRecords(dataDir);
    assert.equal(recs[before]?.type, 'checkpoint', 'the recovered tail is signed first');
    assert.equal(recs[before + 1]?.type, 'gateway.started');
  });
});

describe('audit verify against a rewritten or cut tail', () => {
  it('fails a log whose tail was rewritten with the chain recomputed and its checkpoints dropped', async () => {
    const recs = await loggedOverTime();
    const firstCheckpointAfterStart = recs.findIndex((r, i) => i > 2 && r.type === 'checkpoint');
    const editAt = firstCheckpointAfterStart + 1;
    // The attacker edits one record, re-links everything after it (checkpoints cannot be
    // re-signed, so they are dropped) — under the old rules this verified.
    const edited = recs.map((r) => ({ ...r }));
    edited[editAt] = { ...edited[editAt]!, data: { sql: 'select harmless' } };
    const kept = edited.filter((r, i) => i <= editAt || r.type !== 'checkpoint');
    const renumbered = kept.map((r, i) => ({ ...r, seq: i + 1 }));
    const forged = rechain(renumbered, editAt);
    const path = await writeLog('rewritten.jsonl', forged);
    const result = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(result.ok, false);
    assert.match(result.failure!.reason, /no signed checkpoint for .* of record time .*checkpoints were removed/);

    const c: string[] = [];
    assert.equal(await runAuditVerify([path, '--key', await keyFile()], (l) => c.push(l), () => {}), 1);
    assert.match(c[0]!, /^TAMPERED: .*no signed checkpoint/);
  });

  it('holds a log to --checkpoint-interval when it cannot learn the interval itself', async () => {
    const dataDir = await temp.make();
    const p = await openPipeline(dataDir, key, { checkpointIntervalMs: 60_000 });
    await appendMany(p, 2);
    await sleep(300);
    await appendMany(p, 2);
    await p.close();
    const recs = await spoolRecords(dataDir);
    const path = await writeLog('held.jsonl', recs);
    assert.equal((await verifyAuditFiles([path], { publicKeys: [key.publicJwk] })).ok, true);
    const strict = await verifyAuditFiles([path], { publicKeys: [key.publicJwk], checkpointIntervalMs: 100 });
    assert.equal(strict.ok, false, 'a 300 ms unsigned stretch breaks a 100 ms promise');
  });

  it('reports the unsigned tail and the record time it spans', async () => {
    const recs = await loggedOverTime();
    // Drop the checkpoints at the end (the one at close, and maybe the timer's before it).
    let end = recs.length;
    while (recs[end - 1]!.type === 'checkpoint') end--;
    const cut = recs.slice(0, end);
    const lastCp = cut.map((r) => r.type).lastIndexOf('checkpoint');
    const path = await writeLog('tail.jsonl', cut);
    const result = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(result.ok, true);
    assert.equal(result.unsignedTail, cut.length - 1 - lastCp);
    assert.equal(result.unsignedTailFrom, cut[lastCp + 1]!.ts);
    assert.equal(result.unsignedTailTo, cut.at(-1)!.ts);
    assert.equal(result.unsignedTailSpanMs, Date.parse(cut.at(-1)!.ts) - Date.parse(cut[lastCp + 1]!.ts));
    const out: string[] = [];
    assert.equal(await runAuditVerify([path, '--key', await keyFile()], (l) => out.push(l), () => {}), 0);
    assert.match(out[0]!, new RegExp(`unsigned tail: ${result.unsignedTail} records after the last checkpoint spanning \\d+ms`));
  });
});

describe('audit verify --gateway (the live signed head)', () => {
  it('reports a truncated tail and a rewritten last record against GET /v1/audit/head', async () => {
    const dir = await temp.make();
    const auditFile = join(dir, 'audit', 'audit.jsonl');
    const gw = await startTestGateway({
      config: {
        gateway: { dataDir: join(dir, 'data') },
        resources: { things: { type: 'echo', access: { read: { things: ['a'] } } } },
        policies: [{ agents: ['local:bot'], resources: ['things'], access: ['read'], maxTtl: '15m' }],
        audit: { durability: 'strict', checkpointInterval: '1h', sinks: [{ type: 'file', path: auditFile }] },
      },
      extraPlugins: [echoPlugin],
    });
    try {
      const token = await gw.tokenFor('bot');
      for (let i = 0; i < 6; i++) assert.equal((await gw.requestGrant(token, { resource: 'things', access: 'read', ttl: '1m', task: `t${i}` })).status, 201);
      const admin = await gw.adminToken();
      assert.equal((await gw.api('GET', '/v1/audit/head', token)).status, 403, 'an agent may not read the head');
      const head = await gw.api('GET', '/v1/audit/head', admin);
      assert.equal(head.status, 200);
      const headSeq = head.body.seq as number;
      const metrics = await fetch(`${gw.url}/metrics`).then((r) => r.text());
      assert.match(metrics, /^airlock_audit_spool_fsync_seconds_count [1-9]\d*$/m, '/metrics shows the fsync histogram');
      assert.match(metrics, /^airlock_audit_unsigned_records \d+$/m);
      // Wait for the file sink to hold everything up to the head.
      let lines: string[] = [];
      for (let i = 0; i < 100; i++) {
        lines = (await readFile(auditFile, 'utf8').catch(() => '')).split('\n').filter(Boolean);
        if (lines.length >= headSeq) break;
        await sleep(50);
      }
      assert.equal(lines.length, headSeq);
      const keyPath = join(dir, 'data', 'keys', 'gateway.pub.jwk');

      const whole = join(dir, 'whole.jsonl');
      await writeFile(whole, lines.join('\n') + '\n');
      let out: string[] = [];
      assert.equal(await runAuditVerify([whole, '--key', keyPath, '--gateway', gw.url, '--token', admin], (l) => out.push(l), () => {}), 0, out.join('\n'));
      assert.match(out[1]!, /^live head: matches live gateway /);

      const cutAt = headSeq - 3;
      const truncated = join(dir, 'truncated.jsonl');
      await writeFile(truncated, lines.slice(0, cutAt).join('\n') + '\n');
      out = [];
      assert.equal(await runAuditVerify([truncated, '--key', keyPath, '--gateway', gw.url, '--token', admin], (l) => out.push(l), () => {}), 1);
      assert.match(out[0]!, /^ok: /, 'on its own the cut log verifies');
      assert.match(out[1]!, new RegExp(`^GAP: the log ends at seq ${cutAt}; the live gateway \\S+ at seq ${headSeq} .* has 3 more records \\(seq ${cutAt + 1}\\.\\.${headSeq}\\)`));

      const recs = lines.slice(0, cutAt).map((l) => JSON.parse(l) as AuditRecord);
      recs[cutAt - 1] = { ...recs[cutAt - 1]!, task: 'rewritten' };
      const rewritten = join(dir, 'rewritten.jsonl');
      await writeFile(rewritten, rechain(recs, cutAt - 1).map((r) => JSON.stringify(r)).join('\n') + '\n');
      out = [];
      assert.equal(await runAuditVerify([rewritten, '--key', keyPath, '--gateway', gw.url, '--token', admin], (l) => out.push(l), () => {}), 1);
      assert.match(out[1]!, new RegExp(`^TAMPERED: seq ${cutAt} differs from the gateway's own record of it`));
    } finally {
      await gw.close();
    }
  });
});

async function keyFile(): Promise<string> {
  const path = join(work, 'key.jwk');
  await mkdir(work, { recursive: true });
  await writeFile(path, JSON.stringify(key.publicJwk));
  return path;
}
