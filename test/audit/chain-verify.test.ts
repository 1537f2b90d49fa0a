/**
 * The hash chain and its offline verifier: an untouched log verifies; every kind of
 * tampering (edit, delete, reorder, forged checkpoint) is reported at the first bad
 * record; gzip, several files in any order and duplicated segments verify.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { writeFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sign as cryptoSign } from 'node:crypto';
import { canonicalJson, recordHash, GENESIS_HASH } from '../../core/audit/canonical.ts';
import { HashChain } from '../../core/audit/chain.ts';
import { verifyAuditFiles, verifyRecords } from '../../core/audit/verify.ts';
import { runAuditVerify } from '../../core/cli/audit-verify.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { appendMany, makeKey, openPipeline, readJsonl, spoolSegments, TempDirs, type TestKey } from './helpers.ts';

const temp = new TempDirs();
let key: TestKey;
let records: AuditRecord[];
let lines: string[];
let work: string;

/** Re-links `recs` from index `from` on, as an attacker rewriting the tail would. */
function rechain(recs: AuditRecord[], from: number): AuditRecord[] {
  const out = recs.map((r) => ({ ...r }));
  for (let i = from; i < out.length; i++) {
    if (i > 0) out[i]!.prev = out[i - 1]!.hash;
    out[i]!.hash = recordHash(out[i]!);
  }
  return out;
}

async function writeLog(name: string, recs: Array<AuditRecord | string>): Promise<string> {
  const path = join(work, name);
  await writeFile(path, recs.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return path;
}

function forgeJws(payload: object, privateKey: TestKey['privateKey'], kid: string): string {
  const input = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid })).toString('base64url') + '.' + Buffer.from(JSON.stringify(payload)).toString('base64url');
  return input + '.' + cryptoSign(null, Buffer.from(input), privateKey).toString('base64url');
}

before(async () => {
  key = makeKey();
  const dataDir = await temp.make();
  work = await temp.make();
  const p = await openPipeline(dataDir, key, { checkpointEvery: 10 });
  await appendMany(p, 45);
  await p.close();
  const [segment] = await spoolSegments(dataDir);
  lines = (await readFile(segment!, 'utf8')).split('\n').filter((l) => l !== '');
  records = lines.map((l) => JSON.parse(l) as AuditRecord);
});
after(() => temp.cleanup());

describe('canonical serialization', () => {
  it('sorts keys recursively and writes no whitespace', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 'é\n' }], c: null } }), '{"a":{"c":null,"d":[1,{"y":"é\\n","z":1}]},"b":1}');
  });
  it('hashes a v2 record as written (member order counts), a v1 record by its sorted form (order does not)', () => {
    const r = records[3]!;
    assert.equal(r.v, 2);
    assert.equal(recordHash(r), r.hash);
    const reordered = Object.fromEntries(Object.entries(r).reverse());
    assert.notEqual(recordHash(reordered), r.hash);
    assert.equal(recordHash({ ...r, data: { ...r.data, extra: 1 } }) === r.hash, false);
    const v1 = { ...r, v: 1 as const };
    v1.hash = recordHash(v1);
    assert.equal(recordHash(Object.fromEntries(Object.entries(v1).reverse())), v1.hash);
  });
});

describe('records built by the chain', () => {
  // Small deterministic PRNG so a failure can be reproduced.
  let state = 12345;
  const rand = (n: number) => ((state = (state * 1103515245 + 12345) % 2 ** 31) % n);
  const alphabet = ['a', 'Z', '"', '\\', '\n', '\u0000', 'é', '✓', '\ud800', '\udc00', '😀', ' ', '__proto__', 'seq', '1'];
  const str = () => Array.from({ length: rand(6) }, () => alphabet[rand(alphabet.length)]).join('');
  const value = (depth: number): unknown => {
    switch (rand(depth > 2 ? 4 : 7)) {
      case 0: return str();
      case 1: return rand(2) ? rand(1e6) - 5e5 : (rand(1e6) - 5e5) / 7;
      case 2: return rand(2) === 0;
      case 3: return null;
      case 4: return Array.from({ length: rand(4) }, () => value(depth + 1));
      case 5: return undefined;
      default: return Object.fromEntries(Array.from({ length: rand(5) }, () => [str(), value(depth + 1)]));
    }
  };

  it('hash exactly what a reader of the line recomputes, for any content', () => {
    const chain = new HashChain(0, GENESIS_HASH);
    for (let i = 0; i < 2000; i++) {
      const input: Record<string, unknown> = { type: str() || 't', outcome: (['ok', 'denied', 'error'] as const)[rand(3)] };
      for (const k of ['agent', 'grant', 'session', 'resource', 'task']) if (rand(2)) input[k] = str();
      if (rand(3)) input.data = Object.fromEntries(Array.from({ length: rand(5) }, () => [str(), value(0)]));
      const { record, line } = chain.next(input as never);
      const parsed = JSON.parse(line) as AuditRecord;
      assert.deepEqual(parsed, record);
      assert.equal(recordHash(parsed), record.hash, line);
      assert.equal(line.includes('\n'), false, 'a line never contains a raw newline');
    }
  });

  it('refuses data that cannot be JSON and bad outcomes, allocating no seq', () => {
    const chain = new HashChain(0, GENESIS_HASH);
    assert.throws(() => chain.next({ type: 't', data: { n: 1n } as never, outcome: 'ok' }), /not serializable/);
    assert.throws(() => chain.next({ type: 't', outcome: 'maybe' as never }), /invalid outcome/);
    assert.throws(() => chain.next({ type: '', outcome: 'ok' }), /non-empty type/);
    assert.equal(chain.lastSeq, 0);
  });
});

describe('the chain as written', () => {
  it('links every record to the one before, from genesis', () => {
    assert.equal(records[0]!.seq, 1);
    assert.equal(records[0]!.prev, GENESIS_HASH);
    assert.equal(records[0]!.type, 'gateway.started');
    records.forEach((r, i) => {
      assert.equal(r.seq, i + 1);
      assert.equal(r.hash, recordHash(r));
      if (i > 0) assert.equal(r.prev, records[i - 1]!.hash);
    });
  });
  it('writes a checkpoint after every 10 other records and one at close', () => {
    const cps = records.filter((r) => r.type === 'checkpoint').map((r) => r.seq);
    assert.deepEqual(cps, [11, 22, 33, 44, records.length]);
    assert.equal(records[records.length - 1]!.type, 'checkpoint');
  });
  it('writes fields in the contract order and omits absent ones', () => {
    assert.deepEqual(Object.keys(records[1]!), ['v', 'seq', 'ts', 'type', 'agent', 'grant', 'session', 'resource', 'data', 'outcome', 'prev', 'hash']);
    assert.deepEqual(Object.keys(records[0]!), ['v', 'seq', 'ts', 'type', 'data', 'outcome', 'prev', 'hash']);
  });
});

describe('verifyAuditFiles', () => {
  it('verifies an untouched log', async () => {
    const path = await writeLog('intact.jsonl', records);
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure, undefined);
    assert.equal(r.ok, true);
    assert.equal(r.records, records.length);
    assert.equal(r.firstSeq, 1);
    assert.equal(r.lastSeq, records.length);
    assert.equal(r.checkpoints, 5);
    assert.equal(r.unsignedTail, 0);
  });

  it('reads a spool segment\'s preallocated NUL tail as its end, but fails a NUL that hides records behind it', async () => {
    const path = await writeLog('nul-tail.jsonl', records);
    const whole = await readFile(path);
    await writeFile(path, Buffer.concat([whole, Buffer.alloc(200_000)]));
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure, undefined);
    assert.equal(r.records, records.length);
    const cut = whole.indexOf('\n', Math.floor(whole.length / 2)) + 1;
    const hidden = join(work, 'nul-inside.jsonl');
    await writeFile(hidden, Buffer.concat([whole.subarray(0, cut), Buffer.alloc(100), whole.subarray(cut)]));
    await assert.rejects(verifyAuditFiles([hidden], { publicKeys: [key.publicJwk] }), /NUL byte followed by other bytes/);
  });

  it('names an edited line', async () => {
    const edited = records.map((r) => ({ ...r }));
    edited[6] = { ...edited[6]!, data: { sql: 'select harmless' } };
    const path = await writeLog('edited.jsonl', edited);
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.ok, false);
    assert.deepEqual(r.failure, { file: path, line: 7, seq: 7, reason: 'hash mismatch: the record was edited' });
  });

  it('names the record after a re-hashed edit (prev no longer matches)', async () => {
    const edited = records.map((r) => ({ ...r }));
    edited[6] = { ...edited[6]!, outcome: 'denied' };
    edited[6]!.hash = recordHash(edited[6]!);
    const path = await writeLog('rehashed.jsonl', edited);
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 8);
    assert.equal(r.failure?.line, 8);
    assert.match(r.failure!.reason, /prev does not match the hash of seq 7/);
  });

  it('names the gap left by a deleted line', async () => {
    const path = await writeLog('deleted.jsonl', records.filter((r) => r.seq !== 12));
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 13);
    assert.equal(r.failure?.line, 12);
    assert.match(r.failure!.reason, /seq gap: seq 12 is missing/);
  });

  it('names two reordered lines', async () => {
    const swapped = records.slice();
    [swapped[19], swapped[20]] = [swapped[20]!, swapped[19]!];
    const path = await writeLog('reordered.jsonl', swapped);
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 20);
    assert.equal(r.failure?.line, 21);
    assert.match(r.failure!.reason, /out of order/);
  });

  it('catches a tail rewritten after an edit at the next checkpoint', async () => {
    const edited = records.map((r) => ({ ...r }));
    edited[14] = { ...edited[14]!, data: { sql: 'select nothing to see' } };
    const path = await writeLog('rewritten.jsonl', rechain(edited, 14));
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 22);
    assert.match(r.failure!.reason, /checkpoint payload prev does not match/);
  });

  it('rejects a checkpoint signed with another key under the same kid', async () => {
    const other = makeKey(key.kid);
    const forged = records.map((r) => ({ ...r }));
    const cp = forged[21]!;
    assert.equal(cp.type, 'checkpoint');
    cp.data = { jws: forgeJws({ gatewayId: 'gw-test', seq: cp.seq, prev: cp.prev, kid: key.kid }, other.privateKey, key.kid) };
    const path = await writeLog('forged.jsonl', rechain(forged, 21));
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 22);
    assert.equal(r.failure?.line, 22);
    assert.match(r.failure!.reason, /checkpoint signature invalid/);
  });

  it('rejects a checkpoint signed under an unknown kid', async () => {
    const other = makeKey('intruder');
    const forged = records.map((r) => ({ ...r }));
    const cp = forged[10]!;
    cp.data = { jws: forgeJws({ gatewayId: 'gw-test', seq: cp.seq, prev: cp.prev, kid: 'intruder' }, other.privateKey, 'intruder') };
    const path = await writeLog('unknown-kid.jsonl', rechain(forged, 10));
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 11);
    assert.match(r.failure!.reason, /unknown key id "intruder"/);
  });

  it('rejects a genuine checkpoint moved to another position', async () => {
    const moved = records.map((r) => ({ ...r }));
    // Replace checkpoint 22's signature by checkpoint 11's: valid signature, wrong place.
    moved[21]!.data = { ...records[10]!.data };
    const path = await writeLog('moved.jsonl', rechain(moved, 21));
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 22);
    assert.match(r.failure!.reason, /does not match its position/);
  });

  it('names a line that is no longer JSON', async () => {
    const broken: Array<AuditRecord | string> = records.slice();
    broken[4] = lines[4]!.slice(0, 30);
    const path = await writeLog('broken.jsonl', broken);
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.line, 5);
    assert.match(r.failure!.reason, /invalid JSON/);
  });

  it('verifies gzip and plain files given in any order, counting duplicated segments', async () => {
    const a = await writeLog('part-a.jsonl', records.slice(0, 15));
    const bPlain = await writeLog('part-b.jsonl', records.slice(15, 30));
    const bGz = join(work, 'part-b.jsonl.gz');
    await writeFile(bGz, gzipSync(await readFile(bPlain)));
    const c = await writeLog('part-c.jsonl', records.slice(30));
    const r = await verifyAuditFiles([c, bGz, a, bPlain], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure, undefined);
    assert.equal(r.records, records.length);
    assert.equal(r.duplicates, 15);
    assert.equal(r.duplicateSamples.length > 0, true);
    assert.equal(r.checkpoints, 5);
  });

  it('fails on two different records with the same seq', async () => {
    const a = await writeLog('conf-a.jsonl', records);
    const other = { ...records[9]!, outcome: 'error' as const };
    other.hash = recordHash(other);
    const b = await writeLog('conf-b.jsonl', [other]);
    const r = await verifyAuditFiles([a, b], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 10);
    assert.match(r.failure!.reason, /conflicting records for seq 10/);
  });

  it('verifies a chain that crosses the upgrade: v1 records (as earlier gateways wrote them), then v2', async () => {
    // The first 25 records rewritten as v1 and re-signed with the gateway's own key, as a
    // gateway of the earlier version would have written them; the rest stay v2.
    const mixed = records.map((r) => ({ ...r }));
    for (let i = 0; i < mixed.length; i++) {
      const r = mixed[i]!;
      if (i > 0) r.prev = mixed[i - 1]!.hash;
      if (i < 25) r.v = 1;
      if (r.type === 'checkpoint') {
        const payload = JSON.parse(Buffer.from(String((r.data as { jws: string }).jws).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
        r.data = { jws: forgeJws({ ...payload, prev: r.prev }, key.privateKey, key.kid) };
      }
      r.hash = recordHash(r);
    }
    assert.deepEqual([...new Set(mixed.map((r) => r.v))], [1, 2]);
    const path = await writeLog('upgrade.jsonl', mixed);
    const r = await verifyAuditFiles([path], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure, undefined);
    assert.equal(r.ok, true);
    assert.equal(r.records, mixed.length);
    // An edit in the v1 part is named as in the v2 part.
    mixed[5] = { ...mixed[5]!, task: 'edited' };
    const bad = await verifyAuditFiles([await writeLog('upgrade-edited.jsonl', mixed)], { publicKeys: [key.publicJwk] });
    assert.equal(bad.failure?.seq, 6);
    assert.match(bad.failure!.reason, /hash mismatch/);
  });

  it('refuses a record of an unknown version', async () => {
    const future = records.map((r) => ({ ...r }));
    (future[2] as { v: number }).v = 3;
    const r = await verifyAuditFiles([await writeLog('v3.jsonl', rechain(future, 2))], { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 3);
    assert.match(r.failure!.reason, /unsupported record version 3/);
  });

  it('verifyRecords applies the same checks to records in memory', async () => {
    assert.equal((await verifyRecords(records, { publicKeys: [key.publicJwk] })).ok, true);
    const r = await verifyRecords(records.filter((x) => x.seq !== 5), { publicKeys: [key.publicJwk] });
    assert.equal(r.failure?.seq, 6);
  });
});

describe('airlock audit verify', () => {
  function capture(): { out: string[]; err: string[]; o: (l: string) => void; e: (l: string) => void } {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, o: (l) => out.push(l), e: (l) => err.push(l) };
  }

  it('prints ok and exits 0 for an intact log (key from --key, a JWKS)', async () => {
    const path = await writeLog('cli-intact.jsonl', records);
    const keyFile = join(work, 'jwks.json');
    await writeFile(keyFile, JSON.stringify({ keys: [makeKey('unrelated').publicJwk, key.publicJwk] }));
    const c = capture();
    assert.equal(await runAuditVerify([path, '--key', keyFile], c.o, c.e), 0);
    assert.deepEqual(c.out, [`ok: ${records.length} records, seq 1..${records.length}, 5 checkpoints verified`]);
  });

  it('reads the key from <data-dir>/keys/gateway.pub.jwk', async () => {
    const dataDir = await temp.make();
    await mkdir(join(dataDir, 'keys'));
    await writeFile(join(dataDir, 'keys', 'gateway.pub.jwk'), JSON.stringify(key.publicJwk));
    const path = await writeLog('cli-default.jsonl', records);
    const c = capture();
    assert.equal(await runAuditVerify(['--data-dir', dataDir, path], c.o, c.e), 0);
    assert.match(c.out[0]!, /^ok: /);
  });

  it('prints TAMPERED with file, line and seq and exits 1', async () => {
    const edited = records.map((r) => ({ ...r }));
    edited[6] = { ...edited[6]!, data: { sql: 'select harmless' } };
    const path = await writeLog('cli-edited.jsonl', edited);
    const keyFile = join(work, 'key.jwk');
    await writeFile(keyFile, JSON.stringify(key.publicJwk));
    const c = capture();
    assert.equal(await runAuditVerify([path, `--key=${keyFile}`], c.o, c.e), 1);
    assert.deepEqual(c.out, [`TAMPERED: ${path}:7 seq 7: hash mismatch: the record was edited`]);
  });

  it('exits 2 with one line for an unreadable file, a missing key, or no files', async () => {
    const keyFile = join(work, 'key2.jwk');
    await writeFile(keyFile, JSON.stringify(key.publicJwk));
    let c = capture();
    assert.equal(await runAuditVerify([join(work, 'nope.jsonl'), '--key', keyFile], c.o, c.e), 2);
    assert.equal(c.err.length, 1);
    assert.match(c.err[0]!, /cannot read .*nope\.jsonl.*ENOENT/);

    const emptyDir = await temp.make();
    const path = await writeLog('cli-nokey.jsonl', records);
    c = capture();
    assert.equal(await runAuditVerify([path, '--data-dir', emptyDir], c.o, c.e), 2);
    assert.match(c.err[0]!, /no public key: .*gateway\.pub\.jwk/);

    c = capture();
    assert.equal(await runAuditVerify(['--key', keyFile], c.o, c.e), 2);
    assert.match(c.err[0]!, /no audit files given/);
  });
});
