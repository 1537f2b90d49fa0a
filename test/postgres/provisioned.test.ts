/**
 * Per-grant roles end to end, through the gateway against a real PostgreSQL 15: a grant of a
 * provisioned level logs in upstream as its own role with exactly its privileges on exactly
 * its tables, the guardrail refuses what a read level must not do, and the role is dropped
 * when the grant ends — by revocation, by expiry, after a kill -9 and a restart, and over
 * 200 grants in a loop. Under a static level, role and password changes are refused too
 * (issue 11 item 2).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { startTestGateway, eventually, type TestGateway } from '../harness/gateway.ts';
import { spawnGateway, type Child } from '../core/fixtures/child.ts';
import { loadOrCreateGatewayIdentity } from '../../core/identity/gateway-key.ts';
import { mintAgentToken } from '../../core/identity/local-issuer.ts';
import { ADMIN, ADMIN_PASSWORD, prepareDatabase, provisionedGatewayYaml } from './provision-fixture.ts';
import { AGENT, AGENT_NAME, collectWithin, psql, ROLE_PASSWORD, spawnPsql } from './fixture.ts';

const ENV = { AIRLOCK_TEST_PG_PW: ROLE_PASSWORD, AIRLOCK_TEST_ADMIN_PW: ADMIN_PASSWORD };

let cluster: PostgresCluster;
let gw: TestGateway;
let token: string;

before(async () => {
  cluster = await startPostgresCluster();
  await prepareDatabase(cluster);
  await cluster.sql(`create role agent_ro login password '${ROLE_PASSWORD}'`);
  await cluster.sql('grant select on all tables in schema public to agent_ro', 'reporting');
  gw = await startTestGateway({ yaml: provisionedGatewayYaml(cluster.port, AGENT), env: ENV });
  token = await gw.tokenFor(AGENT_NAME);
});
after(async () => {
  await gw?.close();
  await cluster?.stop();
});

interface Issued {
  id: string;
  env: Record<string, string>;
  role: string;
}

async function issue(access: string, scope?: Record<string, unknown>, ttl = '5m', g: TestGateway = gw, t = token): Promise<Issued> {
  const res = await g.requestGrant(t, { resource: 'reporting', access, ttl, task: 'provisioned e2e', ...(scope ? { scope } : {}) });
  if (res.status !== 201 || !res.body.id || !res.body.connect) throw new Error(`grant refused: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, env: res.body.connect.env, role: `airlock_${res.body.id.toLowerCase()}` };
}

async function grantRoles(): Promise<string[]> {
  const out = await cluster.sql(`select rolname from pg_roles where rolname like 'airlock\\_ag%' order by 1`);
  return out.split('\n').map((l) => l.trim()).filter(Boolean);
}

async function roleExists(role: string): Promise<boolean> {
  return (await grantRoles()).includes(role);
}

test('a grant scoped to sales reads sales as its own role, and nothing else', async () => {
  const g = await issue('read', { tables: ['sales'] });
  assert.ok(await roleExists(g.role), 'the role exists once the grant is active');

  const read = await psql(g.env, ['-c', 'select count(*) from sales']);
  assert.equal(read.code, 0, read.stderr);
  assert.equal(read.stdout.trim(), '12');

  const who = await psql(g.env, ['-c', 'select current_user']);
  assert.equal(who.stdout.trim(), g.role);

  const customers = await psql(g.env, ['-c', 'select * from customers']);
  assert.notEqual(customers.code, 0);
  assert.match(customers.stderr, /permission denied for table customers/);
  const secrets = await psql(g.env, ['-c', 'select * from vault.secrets']);
  assert.notEqual(secrets.code, 0);
  assert.match(secrets.stderr, /permission denied for schema vault/);

  const grants = await psql(g.env, ['-c', "select table_schema || '.' || table_name || ':' || privilege_type from information_schema.role_table_grants where grantee = current_user order by 1"]);
  assert.equal(grants.code, 0, grants.stderr);
  assert.deepEqual(grants.stdout.trim().split('\n'), ['public.sales:SELECT']);

  const created = gw.auditRecords().find((r) => r.type === 'pg.role.created' && r.grant === g.id);
  assert.ok(created, 'pg.role.created recorded');
  assert.deepEqual(created.data?.tables, ['public.sales']);
  assert.deepEqual(created.data?.privileges, ['SELECT']);
});

test('a read level cannot write: the guardrail refuses it before the server sees it, naming the rule', async () => {
  const g = await issue('read', { tables: ['sales'] });
  const before = await cluster.sql('select count(*) from sales', 'reporting');
  const write = await psql(g.env, ['-c', "select 1; insert into sales (month, amount) values ('x', 1)"]);
  assert.notEqual(write.code, 0);
  assert.match(write.stderr, /airlock guardrail "write": INSERT is not allowed/);
  assert.match(write.stderr, /42501|nothing of this query ran/);
  assert.equal(await cluster.sql('select count(*) from sales', 'reporting'), before);
  const denied = gw.auditRecords().find((r) => r.type === 'pg.query' && r.grant === g.id && r.outcome === 'denied');
  assert.ok(denied, 'the refusal is a pg.query record with outcome denied');
  assert.equal(denied.data?.rule, 'write');
  assert.equal(denied.data?.sqlstate, '42501');
  // Nothing of the refused multi-statement query was recorded as run.
  assert.equal(gw.auditRecords().filter((r) => r.type === 'pg.query' && r.grant === g.id && r.outcome === 'ok').length, 0);
});

test('a write level writes only its table; SET ROLE to the admin fails', async () => {
  const g = await issue('write');
  const ins = await psql(g.env, ['-c', "insert into sales (month, amount) values ('w', 5) returning month"]);
  assert.equal(ins.code, 0, ins.stderr);
  const other = await psql(g.env, ['-c', "insert into customers (name) values ('eve')"]);
  assert.match(other.stderr, /permission denied for table customers/);
  const setRole = await psql(g.env, ['-c', `set role ${ADMIN}`]);
  assert.notEqual(setRole.code, 0);
  assert.match(setRole.stderr, /airlock guardrail "session-role"/);
  // Not only the guardrail: the role is a member of nothing, so the database refuses it too.
  const member = await cluster.sql(`select count(*) from pg_auth_members m join pg_roles r on r.oid = m.member where r.rolname = '${g.role}'`);
  assert.equal(member.trim(), '0');
});

test('revocation drops the role and cuts the live session', async () => {
  const g = await issue('read', { tables: ['sales'] });
  const live = spawnPsql(g.env, []);
  const done = collectWithin(live, 30_000, 'the revoked session to end');
  let out = '';
  live.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  live.stdin!.write("select 'started';\n");
  await eventually(() => out.includes('started') || undefined, 10_000, 'the first answer');
  const admin = await gw.adminToken();
  const started = Date.now();
  const res = await gw.revoke(g.id, admin);
  assert.equal(res.status, 200);
  await eventually(async () => ((await roleExists(g.role)) ? undefined : true), 10_000, 'role dropped');
  const tookMs = Date.now() - started;
  // An idle psql reads the socket only when it sends: its next statement meets the FATAL.
  live.stdin!.end('select 2;\n');
  const result = await done;
  assert.match(result.stderr, /revoked/);
  const records = gw.auditRecords();
  const dropped = records.find((r) => r.type === 'pg.role.dropped' && r.grant === g.id);
  assert.ok(dropped);
  assert.equal(dropped.data?.reason, 'revoked');
  assert.ok(records.some((r) => r.type === 'session.closed' && r.grant === g.id && r.data?.reason === 'revoked'));
  console.log(`# revocation to role dropped: ${tookMs} ms`);
});

test('expiry drops the role and cuts the live session', async () => {
  const g = await issue('read', { tables: ['sales'] }, '3s');
  const live = spawnPsql(g.env, []);
  const done = collectWithin(live, 30_000, 'the expired session to end');
  live.stdin!.write('select 1;\n');
  await eventually(() => gw.auditRecords().some((r) => r.type === 'session.opened' && r.grant === g.id) || undefined, 10_000, 'session opened');
  await eventually(async () => ((await roleExists(g.role)) ? undefined : true), 15_000, 'role dropped');
  // psql notices the closed connection at its next statement.
  live.stdin!.end('select 2;\n');
  const out = await done;
  assert.match(out.stderr, /expired/);
  const records = gw.auditRecords();
  assert.ok(records.some((r) => r.type === 'pg.role.dropped' && r.grant === g.id && r.data?.reason === 'expired'));
  assert.ok(records.some((r) => r.type === 'session.closed' && r.grant === g.id && r.data?.reason === 'expired'));
});

test('200 grants created and ended in a loop through the API leave zero airlock_* roles', { timeout: 600_000 }, async () => {
  const admin = await gw.adminToken();
  const leftBefore = await grantRoles();
  for (let i = 0; i < 200; i++) {
    const g = await issue(i % 2 === 0 ? 'read' : 'write', i % 2 === 0 ? { tables: ['sales'] } : undefined);
    const res = await gw.revoke(g.id, admin);
    assert.equal(res.status, 200);
  }
  await eventually(async () => ((await grantRoles()).filter((r) => !leftBefore.includes(r)).length === 0 ? true : undefined), 30_000, 'no grant roles left');
  // No residue either: no ACL entry on the tables names a dropped role (it would show as a bare oid).
  const acl = await cluster.sql("select count(*) from pg_class, unnest(relacl) a where a::text ~ '^[0-9]+='", 'reporting');
  assert.equal(acl.trim(), '0');
});

test('under a static read grant ALTER ROLE … PASSWORD and \\password are refused; the password is unchanged', async () => {
  const g = await issue('static');
  const alter = await psql(g.env, ['-c', "alter role agent_ro password 'mine-now'"]);
  assert.notEqual(alter.code, 0);
  assert.match(alter.stderr, /airlock guardrail "role-change"/);
  const interactive = spawnPsql(g.env, []);
  const done = collectWithin(interactive, 30_000, 'psql running \\password');
  interactive.stdin!.write('\\password\nmine-now\nmine-now\n');
  interactive.stdin!.end();
  const out = await done;
  assert.match(out.stderr, /airlock guardrail "role-change"/);
  const denied = gw.auditRecords().filter((r) => r.type === 'pg.query' && r.grant === g.id && r.outcome === 'denied');
  assert.equal(denied.length, 2, 'both attempts recorded as denied');
  // The upstream role still logs in with its configured password, and not with the new one.
  const direct = postgres({ host: cluster.host, port: cluster.port, database: 'reporting', username: 'agent_ro', password: ROLE_PASSWORD, ssl: { rejectUnauthorized: false }, max: 1, onnotice: () => {} });
  try {
    const [row] = await direct<{ u: string }[]>`select current_user as u`;
    assert.equal(row!.u, 'agent_ro');
  } finally {
    await direct.end();
  }
  const stolen = postgres({ host: cluster.host, port: cluster.port, database: 'reporting', username: 'agent_ro', password: 'mine-now', ssl: { rejectUnauthorized: false }, max: 1, onnotice: () => {} });
  try {
    await assert.rejects(stolen`select 1`, /password authentication failed/);
  } finally {
    await stolen.end();
  }
});

test('a static level with readOnly: true gets the SELECT-only rules; without it, only the every-level ones', async () => {
  const ro = await issue('static-ro');
  const refused = await psql(ro.env, ['-c', 'select * from sales for update']);
  assert.match(refused.stderr, /airlock guardrail "row-lock"/);
  const plain = await issue('static');
  const locked = await psql(plain.env, ['-c', 'select count(*) from (select * from sales for update) s']);
  // Reaches the database, which refuses it by privilege (agent_ro has SELECT only: FOR UPDATE needs UPDATE).
  assert.match(locked.stderr, /permission denied for table sales/);
});

test('a grant that expires while airlock is down (kill -9) leaves no role after a restart', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-pg-crash-'));
  const configPath = join(dir, 'airlock.yaml');
  writeFileSync(
    configPath,
    provisionedGatewayYaml(cluster.port, AGENT, `  http: { listen: 127.0.0.1:0 }\n  dataDir: ${join(dir, 'data')}`) + `identity: { issuers: [{ name: local, type: local }], admins: ['local:ops'] }\n`,
  );
  const entry = join(process.cwd(), 'test/core/fixtures/serve-with-echo.ts');
  const env = { ...process.env, ...ENV };
  let child: Child | undefined;
  try {
    child = await spawnGateway(process.execPath, ['--import', 'tsx', entry, configPath], env);
    const identity = await loadOrCreateGatewayIdentity(join(dir, 'data'));
    const agentToken = await mintAgentToken(identity, AGENT_NAME, 600_000);
    const res = await fetch(`${child.info.url}/v1/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ resource: 'reporting', access: 'read', scope: { tables: ['sales'] }, ttl: '2s', task: 'crash test' }),
    });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    const role = `airlock_${id.toLowerCase()}`;
    assert.ok(await roleExists(role));
    child.proc.kill('SIGKILL');
    await child.stop('SIGKILL');
    await sleep(2500); // the grant expires while no airlock runs
    assert.ok(await roleExists(role), 'nothing dropped it while airlock was down');
    child = await spawnGateway(process.execPath, ['--import', 'tsx', entry, configPath], env);
    assert.equal(await roleExists(role), false, 'the start-up sweep dropped it before the gateway listened');
  } finally {
    await child?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
