/**
 * Stdout sink: the conformance suite over an injected stream, and the real thing — a child
 * process whose stdout carries exactly the audit lines, which verify.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import stdoutSink, { createStreamSink } from '../../audit-sinks/stdout/index.ts';
import { verifyRecords } from '../../core/audit/verify.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { makeKey, spoolRecords, TempDirs } from '../audit/helpers.ts';
import { runSinkConformance } from './conformance.ts';

const temp = new TempDirs();
after(() => temp.cleanup());

runSinkConformance('stdout', async () => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString('utf8')));
  return {
    sink: createStreamSink(stream),
    readBack: async () => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditRecord),
    cleanup: async () => void stream.destroy(),
  };
});

describe('stdout sink', () => {
  it('has a strict schema and a fixed cursor id', () => {
    assert.throws(() => stdoutSink.schema.parse({ type: 'stdout', path: 'x' }));
    assert.equal(stdoutSink.cursorId(stdoutSink.schema.parse({ type: 'stdout' })), 'stdout');
  });

  it("writes exactly the spool's lines to the process's standard output", async () => {
    const key = makeKey('stdout-key');
    const dataDir = await temp.make();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../audit/stdout-sink-child.ts', import.meta.url)), dataDir], {
      env: { ...process.env, AUDIT_TEST_KEY_PEM: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, `child failed: ${stderr}`);
    const lines = stdout.split('\n').filter((l) => l !== '');
    const spool = await spoolRecords(dataDir);
    assert.deepEqual(lines, spool.map((r) => JSON.stringify(r)));
    const v = await verifyRecords(lines.map((l) => JSON.parse(l) as AuditRecord), { publicKeys: [key.publicJwk] });
    assert.equal(v.failure, undefined);
    assert.equal(v.records, spool.length);
    assert.equal(spool.length, 1 + 200 + 4, 'gateway.started, 200 records, 3 periodic checkpoints and one at close');
    assert.equal(v.checkpoints, 4);
  });
});
