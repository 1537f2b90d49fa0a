/**
 * Every server a test starts is stopped whatever happens: a test process that dies in its
 * set-up (uncaught error) still takes its PostgreSQL cluster and moto down with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** pg_ctl's immediate stop returns once the pid file is gone; the process exits just after. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

test('a test process that dies early leaves no PostgreSQL or moto running', { timeout: 120_000 }, async () => {
  const result = await run('test/harness/fixtures/dies-early.ts');
  assert.notEqual(result.code, 0, 'the fixture fails as a broken set-up would');
  const line = result.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `the fixture started its servers: ${result.stderr.slice(-1000)}`);
  const where = JSON.parse(line) as { postgresPort: number; postmasterPid: number; motoEndpoint: string };
  assert.equal(await gone(where.postmasterPid), true, 'the postmaster is gone');
  assert.equal(await accepts(where.postgresPort), false, 'nothing listens on the cluster port');
  assert.equal(await accepts(Number(new URL(where.motoEndpoint).port)), false, 'nothing listens on the moto port');
});
