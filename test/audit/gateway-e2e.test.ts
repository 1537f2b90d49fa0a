/**
 * End to end: a real gateway (in-process, test-only echo plugin) writes grants and denials
 * through the audit pipeline to a file sink; `airlock audit verify` — the real CLI entry
 * point, reading the key the gateway wrote to its data dir — accepts the file, and rejects
 * it once a line is edited.
 */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestGateway } from '../harness/gateway.ts';
import { echoPlugin } from '../core/fixtures/echo-plugin.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { TempDirs } from './helpers.ts';

const run = promisify(execFile);
const temp = new TempDirs();
after(() => temp.cleanup());

async function airlock(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'main.ts', ...args], { cwd: process.cwd() });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

it('gateway audit output verifies with airlock audit verify, and an edit is caught', async () => {
  const dir = await temp.make();
  const auditFile = join(dir, 'audit', 'audit.jsonl');
  const gw = await startTestGateway({
    config: {
      gateway: { dataDir: join(dir, 'data') },
      resources: { things: { type: 'echo', access: { read: { things: ['a', 'b'] } } } },
      policies: [{ agents: ['local:bot'], resources: ['things'], access: ['read'], maxTtl: '15m' }],
      audit: { durability: 'strict', checkpointEvery: 5, sinks: [{ type: 'file', path: auditFile }] },
    },
    extraPlugins: [echoPlugin],
  });
  try {
    const token = await gw.tokenFor('bot');
    for (let i = 0; i < 4; i++) {
      const ok = await gw.requestGrant(token, { resource: 'things', access: 'read', ttl: '1m', task: `task ${i}` });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
    }
    const denied = await gw.requestGrant(token, { resource: 'things', access: 'write', ttl: '1m', task: 'too much' });
    assert.equal(denied.status >= 400, true);
  } finally {
    await gw.close({ keepDataDir: true });
  }

  const records = (await readFile(auditFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord);
  const types = new Set(records.map((r) => r.type));
  for (const t of ['gateway.started', 'grant.issued', 'checkpoint']) assert.ok(types.has(t), `the file holds ${t}`);
  assert.ok(records.some((r) => r.outcome === 'denied'), 'the denial is recorded');
  assert.equal(records.at(-1)!.type, 'checkpoint', 'the gateway closed the pipeline with a checkpoint');

  const good = await airlock(['audit', 'verify', auditFile, '--data-dir', gw.dataDir]);
  assert.equal(good.code, 0, good.stderr);
  const checkpoints = records.filter((r) => r.type === 'checkpoint').length;
  assert.equal(good.stdout.trim(), `ok: ${records.length} records, seq 1..${records.length}, ${checkpoints} checkpoints verified`);

  const lines = (await readFile(auditFile, 'utf8')).split('\n');
  const target = records.findIndex((r) => r.type === 'grant.issued');
  lines[target] = lines[target]!.replace('"task 0"', '"task zero"');
  assert.notEqual(lines.join('\n'), await readFile(auditFile, 'utf8'));
  await writeFile(auditFile, lines.join('\n'));
  const bad = await airlock(['audit', 'verify', auditFile, '--data-dir', gw.dataDir]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout.trim(), `TAMPERED: ${auditFile}:${target + 1} seq ${records[target]!.seq}: hash mismatch: the record was edited`);

  const usage = await airlock(['audit', 'verify', auditFile, '--data-dir', join(dir, 'nowhere')]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr.trim(), /^airlock audit verify: no public key: /);
});
