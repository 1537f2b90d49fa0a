/**
 * The `airlock` CLI as a user runs it (the ./airlock launcher, a real child process):
 * one-line errors naming file, line and key; tokens; grants as shell env; revoke.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';
import { echoPlugin } from './fixtures/echo-plugin.ts';
import { loadOrCreateGatewayIdentity } from '../../core/identity/gateway-key.ts';
import { localIssuerUrl } from '../../core/identity/local-issuer.ts';
import { z } from 'zod';
import { definePlugin } from '../../core/plugin.ts';
import { parseConfigText } from '../../core/config/load.ts';

const cli = join(process.cwd(), 'airlock');
const dir = mkdtempSync(join(tmpdir(), 'airlock-cli-'));
let gw: TestGateway;

before(async () => {
  gw = await startTestGateway({
    extraPlugins: [echoPlugin],
    config: {
      resources: { things: { type: 'echo', access: { read: { things: ['a', 'b'] }, write: { things: ['a'] } } } },
      policies: [
        { agents: ['local:cli-bot'], resources: ['things'], access: ['read'], maxTtl: '15m' },
        { agents: ['local:cli-bot'], resources: ['things'], access: ['write'], maxTtl: '5m', approval: 'required' },
      ],
    },
  });
});
after(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Async on purpose: the gateway under test runs in this process and must keep serving. */
function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cli, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('config errors name the file, the line and the key, on one line', async () => {
  const unknownKey = writeConfig('unknown.yaml', 'gateway:\n  dataDir: ./x\naudit:\n  durability: strict\n  sinkz: []\n');
  let r = (await run(['serve', '--config', unknownKey]));
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`${unknownKey} line 5: audit: unknown key "sinkz"`));

  const badTtl = writeConfig('ttl.yaml', 'policies:\n  - agents: [a]\n    resources: [b]\n    access: [read]\n    maxTtl: forever\n');
  r = (await run(['serve', '--config', badTtl]));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ttl\.yaml line 5: policies\.0\.maxTtl: expected a duration like 90s, 15m, 1h/);

  const badType = writeConfig('type.yaml', 'resources:\n  db:\n    type: mainframe\n');
  r = (await run(['serve', '--config', badType]));
  assert.match(r.stderr, /type\.yaml line 3: resources\.db\.type: unknown resource type "mainframe"/);

  const yamlError = writeConfig('broken.yaml', 'gateway: [\n');
  r = (await run(['serve', '--config', yamlError]));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /broken\.yaml.*invalid YAML/);

  r = (await run(['serve', '--config', join(dir, 'missing.yaml')]));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing\.yaml: config file not found/);
});

test('a missing …Env variable is named with its line', () => {
  const withEnv = definePlugin({
    type: 'vault',
    resourceSchema: z.strictObject({ type: z.literal('vault'), passwordEnv: z.string() }),
    accessLevels: () => ['read'],
    scopeSchema: z.object({}),
    resolveScope: () => ({}),
    start: async () => ({ close: async () => {} }),
  });
  const text = 'resources:\n  db:\n    type: vault\n    passwordEnv: AIRLOCK_TEST_SURELY_UNSET\n';
  assert.throws(() => parseConfigText(text, 'env.yaml', { plugins: [withEnv], sinks: [], env: {} }), /^ConfigError: env\.yaml line 4: resources\.db\.passwordEnv: environment variable AIRLOCK_TEST_SURELY_UNSET is not set$/);
  assert.doesNotThrow(() => parseConfigText(text, 'env.yaml', { plugins: [withEnv], sinks: [], env: { AIRLOCK_TEST_SURELY_UNSET: 'x' } }));
});

test('airlock token prints a verifiable token alone', async () => {
  const path = writeConfig('token.yaml', `gateway:\n  dataDir: ${join(dir, 'data')}\n`);
  const r = (await run(['token', '--agent', 'report-bot', '--ttl', '10m', '--config', path]));
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  assert.equal(r.stdout.split('\n').filter(Boolean).length, 1);
  const identity = await loadOrCreateGatewayIdentity(join(dir, 'data'));
  const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: [identity.key.publicJwk] }), { issuer: localIssuerUrl(identity.gatewayId), audience: 'airlock' });
  assert.equal(payload.sub, 'report-bot');
  assert.ok(payload.exp! - payload.iat! === 600);

  assert.equal((await run(['token', '--config', path])).code, 2);
  assert.match((await run(['token', '--agent', 'x', '--ttl', 'abc', '--config', path])).stderr, /--ttl "abc" is not a duration/);
  assert.match((await run(['token', '--agent', 'x', '--ttl', '48h', '--config', path])).stderr, /exceeds .*maxTokenTtl 24h/);
});

test('airlock grant --format env prints shell lines that work; revoke ends the grant', async () => {
  const token = await gw.tokenFor('cli-bot');
  const env = { AIRLOCK_GATEWAY: gw.url, AIRLOCK_TOKEN: token };
  const r = (await run(['grant', '--resource', 'things', '--access', 'read', '--scope', 'things=a', '--ttl', '5m', '--task', 'cli test'], env));
  assert.equal(r.code, 0, r.stderr);
  // Evaluate the lines with a real shell, as a user would.
  const echoToken = execFileSync('sh', ['-c', `${r.stdout}\nprintf %s "$ECHO_TOKEN"`]).toString();
  const grantId = execFileSync('sh', ['-c', `${r.stdout}\nprintf %s "$AIRLOCK_GRANT_ID"`]).toString();
  assert.match(grantId, /^AG[A-Z2-7]{18}$/);
  assert.equal((await fetch(`${gw.url}/echo/thing/a`, { headers: { authorization: `Bearer ${echoToken}` } })).status, 200);
  assert.equal((await fetch(`${gw.url}/echo/thing/b`, { headers: { authorization: `Bearer ${echoToken}` } })).status, 403, 'scope from --scope applies');

  const json = (await run(['grant', '--resource', 'things', '--access', 'read', '--ttl', '1m', '--task', 'json', '--format', 'json'], env));
  assert.equal(JSON.parse(json.stdout).status, 'active');

  const revoked = (await run(['revoke', grantId], env));
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal((await fetch(`${gw.url}/echo/thing/a`, { headers: { authorization: `Bearer ${echoToken}` } })).status, 401);
  assert.match((await run(['revoke', grantId], env)).stderr, /revoke failed \(409\): grant .* is already revoked/);
});

test('airlock grant refusals are one line and non-zero', async () => {
  const env = { AIRLOCK_GATEWAY: gw.url, AIRLOCK_TOKEN: await gw.tokenFor('cli-bot') };
  let r = (await run(['grant', '--resource', 'nope', '--access', 'read', '--ttl', '5m', '--task', 't'], env));
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), 'airlock: grant refused (403): unknown resource "nope"');
  r = (await run(['grant', '--resource', 'things', '--access', 'read', '--ttl', 'five', '--task', 't'], env));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--ttl "five" is not a duration/);
  r = (await run(['grant', '--resource', 'things', '--access', 'read', '--ttl', '5m'], env));
  assert.match(r.stderr, /--task "why" is required/);
  r = (await run(['grant', '--resource', 'things', '--access', 'read', '--ttl', '5m', '--task', 't'], { AIRLOCK_GATEWAY: gw.url, AIRLOCK_TOKEN: '' }));
  assert.match(r.stderr, /no identity token/);
  r = (await run(['frobnicate']));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
});

test('airlock approve: a pending grant becomes usable once an admin approves it', async () => {
  const env = { AIRLOCK_GATEWAY: gw.url, AIRLOCK_TOKEN: await gw.tokenFor('cli-bot') };
  const r = await run(['grant', '--resource', 'things', '--access', 'write', '--ttl', '2m', '--task', 'needs approval'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^# grant AG\w+ is pending approval/);
  const grantId = /AIRLOCK_GRANT_ID='(AG\w+)'/.exec(r.stdout)![1]!;
  const refused = await run(['approve', grantId], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /approve failed \(403\)/);
  const approved = await run(['approve', grantId], { AIRLOCK_GATEWAY: gw.url, AIRLOCK_TOKEN: await gw.adminToken() });
  assert.equal(approved.code, 0, approved.stderr);
  assert.match(approved.stdout, new RegExp(`^approved ${grantId}: active until `));
});

test('airlock deny: an admin turns a pending grant down with a reason, recorded', async () => {
  const env = { AIRLOCK_GATEWAY: gw.url, AIRLOCK_TOKEN: await gw.tokenFor('cli-bot') };
  const r = await run(['grant', '--resource', 'things', '--access', 'write', '--ttl', '2m', '--task', 'will be denied'], env);
  assert.equal(r.code, 0, r.stderr);
  const grantId = /AIRLOCK_GRANT_ID='(AG\w+)'/.exec(r.stdout)![1]!;
  const admin = { AIRLOCK_GATEWAY: gw.url, AIRLOCK_TOKEN: await gw.adminToken() };
  const noReason = await run(['deny', grantId], admin);
  assert.equal(noReason.code, 2);
  assert.match(noReason.stderr, /usage: airlock deny GRANT_ID --reason/);
  const refused = await run(['deny', grantId, '--reason', 'mine'], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /deny failed \(403\)/);
  const denied = await run(['deny', grantId, '--reason', 'not this week'], admin);
  assert.equal(denied.code, 0, denied.stderr);
  assert.equal(denied.stdout.trim(), `denied ${grantId}`);
  const rec = gw.auditRecords().filter((x) => x.type === 'grant.denied' && x.grant === grantId).at(-1);
  assert.equal(rec?.data?.['reason'], 'not this week');
  assert.equal(rec?.data?.['by'], 'local:ops');
  assert.equal((await gw.api('GET', `/v1/grants/${grantId}`, await gw.adminToken())).body.status, 'denied');
});
