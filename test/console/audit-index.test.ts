/**
 * The console's audit index and spool tail over a real audit pipeline: every record is
 * indexed from the spool (across segment rolls), filters and paging answer from posting
 * lists, and the chain state verifies hashes, links and signed checkpoints, and names the
 * first tampered record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { AuditPipeline } from '../../core/audit/pipeline.ts';
import { loadOrCreateGatewayIdentity } from '../../core/identity/gateway-key.ts';
import { AuditIndex } from '../../core/console/audit-index.ts';
import { ChainState } from '../../core/console/chain-state.ts';
import { SpoolTail } from '../../core/audit/spool-tail.ts';
import { startConsole } from '../../core/console/index.ts';
import type { AuditRecord } from '../../core/plugin.ts';

async function spoolWith(count: number, segmentMaxBytes?: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'airlock-index-'));
  const identity = await loadOrCreateGatewayIdentity(dataDir);
  const audit = await AuditPipeline.open({
    dataDir,
    durability: 'buffered',
    gatewayId: identity.gatewayId,
    checkpointEvery: 40,
    signingKey: { privateKey: identity.key.signingKey, kid: identity.key.kid },
    log: pino({ level: 'silent' }),
    ...(segmentMaxBytes ? { segmentMaxBytes, spoolMaxBytes: 1024 ** 3 } : {}),
  });
  for (let i = 0; i < count; i++) {
    const receipt = audit.append({ type: i % 10 === 0 ? 'grant.approved' : 'pg.query', agent: `local:a${i % 3}`, grant: `G${i % 7}`, resource: i % 2 ? 'orders' : 'reporting', data: { i }, outcome: 'ok' });
    // One write per event-loop turn: yield now and then so the writer rolls segments.
    if (i % 100 === 99) await receipt.spooled;
  }
  await audit.close();
  return { dataDir, identity, spool: join(dataDir, 'spool'), cleanup: () => rmSync(dataDir, { recursive: true, force: true }) };
}

async function readAll(spool: string): Promise<AuditRecord[]> {
  const tail = new SpoolTail(spool, 1);
  const out: AuditRecord[] = [];
  for (;;) {
    const r = await tail.read(97);
    if (r.records.length === 0) return out;
    out.push(...r.records);
  }
}

test('the tail reads every record in order across segment rolls', async () => {
  const s = await spoolWith(3000, 64 * 1024);
  try {
    assert.ok(readdirSync(s.spool).filter((f) => f.endsWith('.jsonl')).length > 3, 'several segments');
    const records = await readAll(s.spool);
    assert.ok(records.length > 3000);
    records.forEach((r, i) => assert.equal(r.seq, i + 1));
  } finally {
    s.cleanup();
  }
});

test('filters and paging answer from the index; the chain state verifies checkpoints', async () => {
  const s = await spoolWith(1000);
  try {
    const records = await readAll(s.spool);
    const index = new AuditIndex(new ChainState([s.identity.key.publicJwk], s.identity.gatewayId));
    await index.add(records);
    const chain = index.chain.status;
    assert.equal(chain.failure, undefined);
    assert.equal(chain.records, records.length);
    assert.ok(chain.fromGenesis);
    assert.equal(chain.checkpoints, records.filter((r) => r.type === 'checkpoint').length);
    assert.ok(chain.checkpoints >= 20);

    const q = { agent: 'local:a1', grant: 'G3', type: 'pg.query' };
    const expected = records.filter((r) => r.agent === q.agent && r.grant === q.grant && r.type === q.type).reverse();
    const paged: AuditRecord[] = [];
    let before: number | undefined;
    for (;;) {
      const page = index.query({ ...q, before, limit: 7 });
      paged.push(...page.records);
      if (page.older === undefined) break;
      before = page.older;
    }
    assert.deepEqual(paged.map((r) => r.seq), expected.map((r) => r.seq));

    const mid = records[500]!;
    const until = Date.parse(mid.ts);
    const timed = index.query({ resource: 'orders', until, limit: 5 });
    assert.ok(timed.records.every((r) => Date.parse(r.ts) <= until && r.resource === 'orders'));
  } finally {
    s.cleanup();
  }
});

test('a tampered record is named as the first failure', async () => {
  const s = await spoolWith(200);
  try {
    const file = join(s.spool, readdirSync(s.spool).find((f) => f.endsWith('.jsonl'))!);
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[120] = lines[120]!.replace('"i":', '"i":1');
    writeFileSync(file, lines.join('\n'));
    const index = new AuditIndex(new ChainState([s.identity.key.publicJwk], s.identity.gatewayId));
    await index.add(await readAll(s.spool));
    assert.equal(index.chain.status.failure?.seq, 121);
    assert.match(index.chain.status.failure?.reason ?? '', /hash does not match/);
    assert.ok(index.size > 200, 'later records are still indexed');
  } finally {
    s.cleanup();
  }
});

test('the console indexes nothing until it is first used, then catches up with the whole spool', async () => {
  const s = await spoolWith(500);
  const unused = () => {
    throw new Error('not used by this test');
  };
  const started = startConsole({
    publicUrl: () => 'http://127.0.0.1:1',
    grants: { list: () => [], publicView: () => undefined, approve: unused, deny: unused, revoke: unused },
    sessions: { list: () => [], get: () => undefined },
    verifyToken: unused,
    issuers: [],
    admins: [],
    recorder: { record: unused, authFailed: unused, authRefused: unused, exchange: unused, whenSpooled: unused },
    log: pino({ level: 'silent' }),
    dataDir: s.dataDir,
    gatewayId: s.identity.gatewayId,
    publicKeys: [s.identity.key.publicJwk],
  });
  try {
    const all = await readAll(s.spool);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(started.index.lastSeq, undefined, 'nothing indexed before the first use');
    await started.warmUp();
    assert.equal(started.index.lastSeq, all.at(-1)!.seq, 'caught up with the spool on first use');
    assert.equal(started.index.chain.status.failure, undefined);
    assert.equal(started.index.chain.status.records, all.length);
  } finally {
    await started.close();
    s.cleanup();
  }
});
