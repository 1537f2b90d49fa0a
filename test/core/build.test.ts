/**
 * The published artefact: `npm run build` (tsdown) produces dist/main.mjs, and that bundle
 * runs as the `airlock` binary without tsx.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'airlock-build-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('npm run build makes a bundle that runs as the airlock binary', { timeout: 180_000 }, async () => {
  await run('npm', ['run', 'build'], { timeout: 170_000 });
  const config = join(dir, 'airlock.yaml');
  writeFileSync(config, `gateway:\n  dataDir: ${join(dir, 'data')}\n`);
  const token = await run(process.execPath, ['dist/main.mjs', 'token', '--agent', 'bundle-check', '--config', config]);
  assert.match(token.stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const bad = await run(process.execPath, ['dist/main.mjs', 'grant', '--resource', 'x']).catch((e: { code: number; stderr: string }) => e);
  assert.equal((bad as { code: number }).code, 2);
  assert.match((bad as { stderr: string }).stderr, /^airlock: --access A is required$/m);
});
