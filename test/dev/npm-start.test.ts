/**
 * `airlock dev` (what `npm start` runs) as a newcomer meets it: start it, copy the commands
 * it prints, run them in a shell, and they work — psql through the Postgres plugin, the aws
 * CLI through the DynamoDB plugin, and `airlock audit verify` on the resulting audit.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'airlock-dev-'));
let child: ChildProcess | undefined;

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
});

function sh(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('bash', ['-c', script], { cwd: root, env: { ...process.env, AWS_PAGER: '', PAGER: 'cat' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('npm start: the printed commands work', { timeout: 240_000 }, async () => {
  child = spawn(process.execPath, ['--import', 'tsx', 'main.ts', 'dev'], {
    cwd: root,
    env: { ...process.env, AIRLOCK_DEV_DIR: join(dir, 'dev'), AIRLOCK_DEV_HTTP: '127.0.0.1:0', AIRLOCK_DEV_PG: '127.0.0.1:0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`airlock dev printed no instructions in 180 s; stderr: ${err.slice(-2000)}`)), 180_000);
    child!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/airlock audit verify .*\n/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child!.once('exit', (code) => reject(new Error(`airlock dev exited with ${code}: ${err.slice(-2000)}`)));
  });

  const lines = out.split('\n').map((l) => l.trim());
  const exports = lines.filter((l) => l.startsWith('export AIRLOCK_'));
  assert.equal(exports.length, 2, out);
  const pgBlock = lines.slice(lines.findIndex((l) => l.includes('--resource reporting'))).slice(0, 2);
  const dynamoBlock = lines.slice(lines.findIndex((l) => l.includes('--resource orders'))).slice(0, 2);
  const writeBlock = lines.slice(lines.findIndex((l) => l.includes('--access write'))).slice(0, 3);
  const verifyLine = lines.find((l) => l.startsWith('./airlock audit verify'))!;

  const pg = await sh([...exports, ...pgBlock].join('\n'));
  assert.equal(pg.code, 0, `psql block failed: ${pg.stderr}`);
  assert.match(pg.stdout, /\(\d+ rows?\)/, pg.stdout);

  // The demo's read grant asks for one table: the printed command for another is refused by the database.
  const refusedLine = lines.find((l) => l.startsWith('psql') && l.includes('customers'));
  assert.ok(refusedLine, `a printed command shows another table refused: ${out}`);
  const refused = await sh([...exports, pgBlock[0]!, refusedLine].join('\n'));
  assert.notEqual(refused.code, 0, refused.stdout);
  assert.match(refused.stderr, /permission denied for table customers/);

  const dynamo = await sh([...exports, ...dynamoBlock].join('\n'));
  assert.equal(dynamo.code, 0, `aws block failed: ${dynamo.stderr}`);
  const scan = JSON.parse(dynamo.stdout) as { Items: unknown[]; Count: number };
  assert.ok(scan.Count > 0, 'the seeded orders table has items');

  const write = await sh([...exports, ...writeBlock].join('\n'));
  assert.equal(write.code, 0, `write block failed: ${write.stdout}${write.stderr}`);
  assert.match(write.stdout, /approved AG\w+: active until/);
  assert.match(write.stdout, /UPDATE 0/);

  const verify = await sh(verifyLine);
  assert.equal(verify.code, 0, `${verify.stdout}${verify.stderr}`);
  assert.match(verify.stdout, /^ok/);
});
