/**
 * kill -9: a child appends to a strict pipeline and prints each seq once durable; it is
 * SIGKILLed mid-stream. Every printed seq must be in the spool, and the chain — including
 * records written after the restart — must verify.
 */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { appendMany, makeKey, openPipeline, spoolRecords, spoolSegments, TempDirs } from './helpers.ts';

const temp = new TempDirs();
after(() => temp.cleanup());

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

it('loses no durable record to SIGKILL and continues the chain after restart', async () => {
  const key = makeKey('crash-key');
  const dataDir = await temp.make();
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir], {
    env: { ...process.env, AUDIT_TEST_KEY_PEM: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const printed: number[] = [];
  let stderr = '';
  let partial = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      const text = partial + d.toString();
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const l of lines) printed.push(Number(l));
      if (printed.length >= 3000) resolve();
    });
    void exited.then(({ code, signal }) => reject(new Error(`child exited early (code ${code}, signal ${signal}): ${stderr}`)));
  });
  child.kill('SIGKILL');
  const { signal } = await exited;
  assert.equal(signal, 'SIGKILL');
  // A line cut by the kill is not a whole seq; everything else was durable when printed.
  const durable = printed;
  assert.equal(durable.length >= 3000, true);

  const p = await openPipeline(dataDir, key);
  await appendMany(p, 25, 'after-restart');
  await p.close();

  const recs = await spoolRecords(dataDir);
  const inSpool = new Set(recs.map((r) => r.seq));
  const missing = durable.filter((s) => !inSpool.has(s));
  assert.deepEqual(missing, [], 'every seq reported durable is in the spool');
  const restart = recs.filter((r) => r.type === 'gateway.started');
  assert.equal(restart.length, 2);
  assert.equal(restart[1]!.seq > Math.max(...durable), true);

  const v = await verifyAuditFiles(await spoolSegments(dataDir), { publicKeys: [key.publicJwk] });
  assert.equal(v.failure, undefined);
  assert.equal(v.records, recs.length);
  assert.equal(v.lastSeq, recs.length);
  assert.equal(v.checkpoints >= Math.floor(durable.length / 98), true);
});
