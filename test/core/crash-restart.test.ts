/**
 * kill -9 of the gateway process, then a restart on the same dataDir: no acknowledged
 * audit record is lost, grants survive, and the hash chain continues verifiably.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { spawnGateway, type Child } from './fixtures/child.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { loadOrCreateGatewayIdentity } from '../../core/identity/gateway-key.ts';
import { mintAgentToken } from '../../core/identity/local-issuer.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-crash-'));
const configPath = join(dir, 'airlock.yaml');
writeFileSync(
  configPath,
  stringify({
    gateway: { http: { listen: '127.0.0.1:0' }, dataDir: join(dir, 'data') },
    identity: { issuers: [{ name: 'local', type: 'local' }], admins: ['local:ops'] },
    resources: { things: { type: 'echo', access: { read: { things: ['a'] } } } },
    policies: [{ agents: ['local:*'], resources: ['things'], access: ['read'], maxTtl: '15m' }],
    audit: { durability: 'strict', checkpointEvery: 7 },
  }),
);
const children: Child[] = [];
after(async () => {
  for (const c of children) await c.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

// Run node itself (not the tsx wrapper, which forks): SIGKILL must hit the gateway process.
const node = process.execPath;
const entry = join(process.cwd(), 'test/core/fixtures/serve-with-echo.ts');

async function grant(url: string, token: string, n: number) {
  const res = await fetch(`${url}/v1/grants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ resource: 'things', access: 'read', ttl: '10m', task: `crash test ${n}` }),
  });
  return { status: res.status, body: (await res.json()) as { id: string; secret: string } };
}

test('kill -9 loses no acknowledged record; the chain continues; grants survive', async () => {
  const first = await spawnGateway(node, ['--import', 'tsx', entry, configPath]);
  children.push(first);
  const identity = await loadOrCreateGatewayIdentity(join(dir, 'data'));
  const token = await mintAgentToken(identity, 'crash-bot', 600_000);

  // Grants acknowledged with 201 before the kill; more requests in flight while it dies.
  const acknowledged: Array<{ id: string; secret: string }> = [];
  for (let i = 0; i < 20; i++) {
    const r = await grant(first.info.url, token, i);
    assert.equal(r.status, 201);
    acknowledged.push(r.body);
  }
  const inFlight = Array.from({ length: 10 }, (_, i) => grant(first.info.url, token, 100 + i).catch(() => undefined));
  await new Promise((r) => setTimeout(r, 5));
  first.proc.kill('SIGKILL');
  const survivors = (await Promise.all(inFlight)).filter((r) => r?.status === 201).map((r) => r!.body);

  const second = await spawnGateway(node, ['--import', 'tsx', entry, configPath]);
  children.push(second);
  for (let i = 0; i < 5; i++) assert.equal((await grant(second.info.url, token, 200 + i)).status, 201);
  // A grant issued before the crash still works after it.
  const old = acknowledged[3]!;
  const use = await fetch(`${second.info.url}/echo/thing/a`, { headers: { authorization: `Bearer ${old.id}.${old.secret}` } });
  assert.equal(use.status, 200);
  assert.equal(await second.stop('SIGTERM'), 0);

  const spoolDir = join(dir, 'data', 'spool');
  const files = readdirSync(spoolDir).filter((f) => f.endsWith('.jsonl')).map((f) => join(spoolDir, f));
  const records = files.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; grant?: string }));
  const issued = new Set(records.filter((r) => r.type === 'grant.issued').map((r) => r.grant));
  for (const g of [...acknowledged, ...survivors]) assert.ok(issued.has(g.id), `acknowledged grant ${g.id} has its grant.issued record`);
  assert.equal(records.filter((r) => r.type === 'gateway.started').length, 2, 'the chain spans both runs');

  const result = await verifyAuditFiles(files, { publicKeys: [identity.key.publicJwk] });
  assert.equal(result.ok, true, JSON.stringify(result));
});

test('sessions open at a kill -9 are closed in the audit on restart (reason crash), and gateway.started says the stop was unclean', async () => {
  const first = await spawnGateway(node, ['--import', 'tsx', entry, configPath]);
  children.push(first);
  const identity = await loadOrCreateGatewayIdentity(join(dir, 'data'));
  const token = await mintAgentToken(identity, 'crash-bot', 600_000);
  const g = await grant(first.info.url, token, 300);
  assert.equal(g.status, 201);
  // A live session: a streamed response held open until the core closes it.
  const held = new AbortController();
  const res = await fetch(`${first.info.url}/echo/hold`, { headers: { authorization: `Bearer ${g.body.id}.${g.body.secret}` }, signal: held.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read(); // the stream has started
  // Kill only once its session.opened is in the spool (the fixture does not wait for it).
  const spool = join(dir, 'data', 'spool');
  const openedInSpool = () =>
    readdirSync(spool)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => readFileSync(join(spool, f), 'utf8').split('\n').filter((l) => l.startsWith('{')))
      .some((l) => {
        try {
          const r = JSON.parse(l) as { type: string; grant?: string };
          return r.type === 'session.opened' && r.grant === g.body.id;
        } catch {
          return false; // a line still being written
        }
      });
  for (let i = 0; i < 100 && !openedInSpool(); i++) await new Promise((r) => setTimeout(r, 50));
  first.proc.kill('SIGKILL');
  held.abort();

  const second = await spawnGateway(node, ['--import', 'tsx', entry, configPath]);
  children.push(second);
  assert.equal(await second.stop('SIGTERM'), 0);

  const spoolDir = join(dir, 'data', 'spool');
  const files = readdirSync(spoolDir).filter((f) => f.endsWith('.jsonl')).map((f) => join(spoolDir, f));
  const records = files.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; grant?: string; session?: string; data?: Record<string, unknown> }));
  const opened = records.filter((r) => r.type === 'session.opened' && r.grant === g.body.id);
  assert.equal(opened.length, 1, 'the held stream opened one session');
  const closed = records.filter((r) => r.type === 'session.closed' && r.session === opened[0]!.session);
  assert.equal(closed.length, 1, 'exactly one session.closed for it');
  assert.equal(closed[0]!.data?.reason, 'crash');
  assert.equal(closed[0]!.grant, g.body.id, 'the crash record names the grant');
  const starts = records.filter((r) => r.type === 'gateway.started');
  assert.equal(starts.at(-1)!.data?.uncleanStop, true, 'the start after the kill says so');
  const cleanStart = starts.at(-2)!;
  // The first start of this test followed the previous test's clean SIGTERM stop.
  assert.equal(cleanStart.data?.uncleanStop, undefined, 'a start after a clean stop does not');

  const result = await verifyAuditFiles(files, { publicKeys: [identity.key.publicJwk] });
  assert.equal(result.ok, true, JSON.stringify(result));
});
