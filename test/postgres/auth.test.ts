/**
 * Client authentication at airlock's front door: SCRAM-SHA-256 with the grant id and secret;
 * wrong password, unknown grant, expired and revoked grants and the wrong database are refused
 * with the right SQLSTATE and an `auth.failed` record; TLS with sslmode=require and verify-full.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import postgres from 'postgres';
import { startCluster, startFixture, grant, psql, gatewayYaml, ROLE_PASSWORD, AGENT_NAME, type PgFixture } from './fixture.ts';
import { startTestGateway } from '../harness/gateway.ts';
import { generateSelfSignedCert, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { eventually } from '../harness/gateway.ts';
import type { AuditRecord } from '../../core/plugin.ts';

let cluster: PostgresCluster;
let f: PgFixture;
before(async () => {
  cluster = await startCluster();
  // Plaintext allowed here: these tests look at SCRAM itself over raw sockets (tls.test.ts covers the default refusal).
  f = await startFixture(cluster, { listenerExtra: 'allowPlaintext: true' });
});
after(async () => {
  await f?.close();
  await cluster?.stop();
});

/** Connect with postgres.js and return the SQLSTATE of the refusal (or 'ok'). */
async function attempt(opts: { user: string; pass: string; db?: string; ssl?: 'require' | false }): Promise<{ code: string; message: string }> {
  const sql = postgres({ host: f.host, port: f.port, user: opts.user, pass: opts.pass, database: opts.db ?? 'reporting', ssl: opts.ssl ?? 'require', max: 1, connect_timeout: 10, onnotice: () => {} });
  try {
    await sql`select 1`;
    return { code: 'ok', message: '' };
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { code: err.code ?? 'none', message: err.message };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function authFailures(since: number): AuditRecord[] {
  return f.gw.auditRecords().filter((r) => r.seq > since && r.type === 'auth.failed');
}

function lastSeq(): number {
  return f.gw.auditRecords().at(-1)?.seq ?? 0;
}

test('the right secret logs in (postgres.js, SCRAM-SHA-256 over TLS)', async () => {
  const g = await grant(f);
  assert.deepEqual(await attempt({ user: g.id, pass: g.secret }), { code: 'ok', message: '' });
});

test('a wrong password is refused with 28P01 and recorded', async () => {
  const g = await grant(f);
  const since = lastSeq();
  const r = await attempt({ user: g.id, pass: g.secret.slice(0, -1) + (g.secret.endsWith('A') ? 'B' : 'A') });
  assert.equal(r.code, '28P01');
  assert.match(r.message, /password authentication failed/);
  const rec = await eventually(() => authFailures(since).find((x) => x.data?.claimedId === g.id), 3000, 'auth.failed');
  assert.equal(rec.data?.code, 'BAD_CREDENTIAL');
  assert.equal(rec.resource, 'reporting');
  assert.ok(!JSON.stringify(f.gw.auditRecords()).includes(g.secret), 'the secret never reaches the audit');
});

test('an unknown grant id is refused exactly like a wrong password (28P01), and recorded', async () => {
  const since = lastSeq();
  const r = await attempt({ user: 'AGNOSUCHGRANTAAAAAAA', pass: 'whatever-secret' });
  assert.equal(r.code, '28P01');
  assert.match(r.message, /password authentication failed for user "AGNOSUCHGRANTAAAAAAA"/);
  const rec = await eventually(() => authFailures(since).find((x) => x.data?.claimedId === 'AGNOSUCHGRANTAAAAAAA'), 3000, 'auth.failed');
  assert.equal(rec.data?.code, 'GRANT_UNKNOWN');
});

test('a secret typed into the user field is never recorded in clear (only a short hash)', async () => {
  const since = lastSeq();
  const mistyped = 'this-is-my-grant-secret-Zq9xT4';
  const r = await attempt({ user: mistyped, pass: 'whatever-secret' });
  assert.equal(r.code, '28P01');
  const expected = `h:${createHash('sha256').update(mistyped).digest('hex').slice(0, 12)}`;
  const rec = await eventually(() => authFailures(since).find((x) => x.data?.claimedId === expected), 3000, 'auth.failed with the hashed claim');
  assert.equal(rec.data?.code, 'GRANT_UNKNOWN');
  assert.ok(!JSON.stringify(f.gw.auditRecords()).includes(mistyped), 'the typed secret is not in the audit');
});

test('a revoked grant is refused with 28000 naming the reason', async () => {
  const g = await grant(f);
  const rv = await f.gw.revoke(g.id, await f.gw.adminToken());
  assert.equal(rv.status, 200, JSON.stringify(rv.body));
  const since = lastSeq();
  const r = await attempt({ user: g.id, pass: g.secret });
  assert.equal(r.code, '28000');
  assert.match(r.message, /revoked/);
  const rec = await eventually(() => authFailures(since).find((x) => x.data?.claimedId === g.id), 3000, 'auth.failed');
  assert.equal(rec.data?.code, 'GRANT_REVOKED');
});

test('an expired grant is refused with 28000', async () => {
  const g = await grant(f, 'read', '1s');
  await new Promise((r) => setTimeout(r, 1300));
  const since = lastSeq();
  const r = await attempt({ user: g.id, pass: g.secret });
  assert.equal(r.code, '28000');
  assert.match(r.message, /expired/);
  const rec = await eventually(() => authFailures(since).find((x) => x.data?.claimedId === g.id), 3000, 'auth.failed');
  assert.equal(rec.data?.code, 'GRANT_EXPIRED');
});

test('a database other than the resource\'s is refused with 3D000', async () => {
  const g = await grant(f);
  const since = lastSeq();
  const r = await attempt({ user: g.id, pass: g.secret, db: 'postgres' });
  assert.equal(r.code, '3D000');
  const rec = await eventually(() => authFailures(since).find((x) => x.data?.claimedId === g.id), 3000, 'auth.failed');
  assert.equal(rec.data?.code, 'OUT_OF_SCOPE');
});

test('a grant request with a scope is refused (postgres grants have none)', async () => {
  const res = await f.gw.requestGrant(f.token, { resource: 'reporting', access: 'read', ttl: '1m', task: 't', scope: { tables: ['revenue'] } });
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.match(String(res.body.error), /scope/);
});

test('psql with sslmode=require and with verify-full against the gateway certificate', async () => {
  const g = await grant(f);
  assert.equal(g.env.PGSSLMODE, 'require');
  const r = await psql(g.env, ['-c', 'select 7']);
  assert.equal(r.stdout.trim(), '7', r.stderr);
  const verify = await psql({ ...g.env, PGSSLMODE: 'verify-full', PGSSLROOTCERT: join(f.gw.dataDir, 'tls', 'self-signed.crt'), PGHOST: 'localhost' }, ['-c', 'select 8']);
  assert.equal(verify.stdout.trim(), '8', verify.stderr);
  // Plain TCP still authenticates with SCRAM (no secret crosses the wire).
  const plain = await psql({ ...g.env, PGSSLMODE: 'disable' }, ['-c', 'select 9']);
  assert.equal(plain.stdout.trim(), '9', plain.stderr);
  const opened = f.gw.auditRecords().filter((x) => x.grant === g.id && x.type === 'session.opened');
  assert.deepEqual(opened.map((o) => o.data?.tls), [true, true, false]);
});

test('the only authentication offered to clients is SCRAM-SHA-256 (no cleartext, no MD5)', async () => {
  const g = await grant(f);
  const params = Buffer.from(`user\0${g.id}\0database\0reporting\0\0`);
  const startup = Buffer.alloc(8 + params.length);
  startup.writeInt32BE(startup.length, 0);
  startup.writeInt32BE(196608, 4);
  params.copy(startup, 8);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const sock = connect({ host: f.host, port: f.port }, () => sock.write(startup));
    sock.once('data', (d: Buffer) => {
      sock.destroy();
      resolve(d);
    });
    sock.once('error', reject);
  });
  assert.equal(String.fromCharCode(reply[0]!), 'R');
  assert.equal(reply.readInt32BE(5), 10, 'AuthenticationSASL');
  assert.deepEqual(reply.subarray(9).toString('latin1').split('\0').filter(Boolean), ['SCRAM-SHA-256']);
});

test('an access level can name its own password variable (different roles, different passwords)', async () => {
  await cluster.sql(`alter role agent_rw password 'rw-only-password'`);
  try {
    const yaml = gatewayYaml(cluster).replace('write: { user: agent_rw }', 'write: { user: agent_rw, passwordEnv: AIRLOCK_TEST_RW_PW }');
    const gw = await startTestGateway({ yaml, env: { AIRLOCK_TEST_PG_PW: ROLE_PASSWORD, AIRLOCK_TEST_RW_PW: 'rw-only-password' } });
    try {
      const token = await gw.tokenFor(AGENT_NAME);
      for (const access of ['read', 'write']) {
        const res = await gw.requestGrant(token, { resource: 'reporting', access, ttl: '1m', task: 'per-level passwords' });
        assert.equal(res.status, 201);
        const r = await psql(res.body.connect!.env, ['-c', 'select current_user']);
        assert.equal(r.stdout.trim(), access === 'read' ? 'agent_ro' : 'agent_rw', r.stderr);
      }
    } finally {
      await gw.close();
    }
  } finally {
    await cluster.sql(`alter role agent_rw password '${ROLE_PASSWORD}'`);
  }
});

test('upstream tls: verify-full checks the server certificate against caFile', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-ca-'));
  try {
    writeFileSync(join(dir, 'right.pem'), cluster.certPem);
    writeFileSync(join(dir, 'wrong.pem'), generateSelfSignedCert(dir, 'other').certPem);
    for (const [ca, expectOk] of [['right.pem', true], ['wrong.pem', false]] as const) {
      const yaml = gatewayYaml(cluster, { tls: 'verify-full', host: 'localhost', extraResourceYaml: `    caFile: ${join(dir, ca)}` });
      const gw = await startTestGateway({ yaml, env: { AIRLOCK_TEST_PG_PW: ROLE_PASSWORD } });
      try {
        const res = await gw.requestGrant(await gw.tokenFor(AGENT_NAME), { resource: 'reporting', access: 'read', ttl: '1m', task: 'verify-full' });
        const r = await psql(res.body.connect!.env, ['-c', 'select 5']);
        if (expectOk) assert.equal(r.stdout.trim(), '5', r.stderr);
        else {
          assert.notEqual(r.code, 0);
          assert.match(r.stderr, /upstream TLS failed/);
        }
      } finally {
        await gw.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('repeated failed logins from one address are answered 53300; the right secret still logs in from it', async () => {
  // Its own gateway: the block lasts a minute for this address and must not touch other tests.
  const own = await startFixture(cluster);
  try {
    const g = await grant(own);
    const wrong = g.secret.slice(0, -1) + (g.secret.endsWith('A') ? 'B' : 'A');
    const tryLogin = async (pass: string) => {
      const sql = postgres({ host: own.host, port: own.port, user: g.id, pass, database: 'reporting', ssl: 'require', max: 1, connect_timeout: 10, onnotice: () => {} });
      try {
        await sql`select 1`;
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code ?? 'none';
      } finally {
        await sql.end({ timeout: 1 });
      }
    };
    let code = '';
    // The gateway-wide budget is 100 failures a minute per address (docs/contract.md).
    for (let i = 0; i < 130 && code !== '53300'; i++) code = await tryLogin(wrong);
    const codes = own.gw.auditRecords().filter((r) => r.type === 'auth.failed').map((r) => r.data?.code);
    assert.equal(code, '53300', `the address is limited after repeated failures (recorded: ${codes.join(',')})`);
    assert.equal(await tryLogin(wrong), '53300', 'a further wrong secret is still refused as rate limited');
    // Limit failures, not credentials that verify: one NAT must not shut out a whole team.
    assert.equal(await tryLogin(g.secret), 'ok', 'the right secret logs in from the limited address');
  } finally {
    await own.gw.close({ keepDataDir: true });
  }
  // Refusals past the first few are counted into auth.failed.summary (written at the latest
  // when the gateway closes), so the RATE_LIMITED refusals are in one or the other.
  const limited = own.gw.auditRecords().some(
    (r) => (r.type === 'auth.failed' && r.data?.code === 'RATE_LIMITED') || (r.type === 'auth.failed.summary' && Number((r.data?.codes as Record<string, number> | undefined)?.RATE_LIMITED) > 0),
  );
  assert.ok(limited, 'the refusals of the blocked address are recorded');
});
