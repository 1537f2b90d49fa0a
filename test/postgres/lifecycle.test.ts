/**
 * Live sessions end with their grant: a psql session in the middle of a query is cut with
 * FATAL 57P01 within a second of expiry and of revocation, and `session.closed` says why.
 * psql's Ctrl-C (CancelRequest) reaches the upstream through airlock's own cancel keys.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { startCluster, startFixture, grant, spawnPsql, collect, type PgFixture } from './fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { eventually } from '../harness/gateway.ts';

let cluster: PostgresCluster;
let f: PgFixture;
before(async () => {
  cluster = await startCluster();
  f = await startFixture(cluster);
});
after(async () => {
  await f?.close();
  await cluster?.stop();
});

/** Resolve with the time at which `pattern` first appears in the child's stderr. */
function whenStderrMatches(child: ReturnType<typeof spawnPsql>, pattern: RegExp): Promise<number> {
  return new Promise((resolve) => {
    let text = '';
    child.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
      if (pattern.test(text)) resolve(Date.now());
    });
  });
}

function whenStdoutMatches(child: ReturnType<typeof spawnPsql>, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    let text = '';
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      if (pattern.test(text)) resolve();
    });
  });
}

test('a live session is cut with FATAL 57P01 within 1 s of the grant expiring', async () => {
  const res = await f.gw.requestGrant(f.token, { resource: 'reporting', access: 'read', ttl: '3s', task: 'expiry test' });
  assert.equal(res.status, 201);
  const env = res.body.connect!.env;
  const expiresAt = Date.parse(String(res.body.expiresAt));
  const child = spawnPsql(env, ['-v', 'VERBOSITY=verbose']);
  const done = collect(child);
  const cut = whenStderrMatches(child, /57P01/);
  const ready = whenStdoutMatches(child, /started/);
  child.stdin!.write("select 'started';\nselect pg_sleep(30);\n");
  await ready;
  const cutAt = await cut;
  const out = await done;
  assert.match(out.stderr, new RegExp(`FATAL:  57P01: terminating connection: airlock grant ${res.body.id} expired`));
  assert.ok(cutAt - expiresAt < 1000, `cut ${cutAt - expiresAt} ms after expiry`);
  const closed = await eventually(() => f.gw.auditRecords().find((r) => r.grant === res.body.id && r.type === 'session.closed'), 3000, 'session.closed');
  assert.equal(closed.data?.reason, 'expired');
  // The upstream backend is gone too (no leftover pg_sleep).
  await eventually(async () => (await cluster.sql("select count(*) from pg_stat_activity where query = 'select pg_sleep(30);'")).trim() === '0' || undefined, 3000, 'upstream backend ended');
});

test('a live session is cut with FATAL 57P01 within 1 s of revocation', async () => {
  const g = await grant(f, 'read', '5m');
  const child = spawnPsql(g.env, ['-v', 'VERBOSITY=verbose']);
  const done = collect(child);
  const cut = whenStderrMatches(child, /57P01/);
  const ready = whenStdoutMatches(child, /started/);
  // psql reads the socket only while a statement runs: keep one running to see the FATAL at once.
  child.stdin!.write("select 'started';\nselect pg_sleep(30);\n");
  await ready;
  const revokedAt = Date.now();
  const rv = await f.gw.revoke(g.id, await f.gw.adminToken());
  assert.equal(rv.status, 200);
  const cutAt = await cut;
  child.stdin!.end();
  const out = await done;
  assert.match(out.stderr, new RegExp(`FATAL:  57P01: terminating connection: airlock grant ${g.id} revoked`));
  assert.ok(cutAt - revokedAt < 1000, `cut ${cutAt - revokedAt} ms after revocation`);
  const closed = await eventually(() => f.gw.auditRecords().find((r) => r.grant === g.id && r.type === 'session.closed'), 3000, 'session.closed');
  assert.equal(closed.data?.reason, 'revoked');
  await eventually(async () => (await cluster.sql("select count(*) from pg_stat_activity where query = 'select pg_sleep(30);'")).trim() === '0' || undefined, 3000, 'upstream backend ended');
});

test('psql cancel (SIGINT → CancelRequest) stops a running statement upstream', async () => {
  const g = await grant(f);
  const child = spawnPsql(g.env, ['-v', 'VERBOSITY=verbose']);
  const done = collect(child);
  child.stdin!.write('select pg_sleep(10);\n');
  await eventually(async () => (await cluster.sql("select count(*) from pg_stat_activity where query = 'select pg_sleep(10);' and state = 'active'")).trim() === '1' || undefined, 5000, 'pg_sleep running upstream');
  child.kill('SIGINT');
  const out = await done; // a non-interactive psql stops its script after Ctrl-C
  assert.match(out.stderr, /ERROR:  57014: canceling statement due to user request/);
  const activeAfter = await cluster.sql("select count(*) from pg_stat_activity where query = 'select pg_sleep(10);' and state = 'active'");
  assert.equal(activeAfter.trim(), '0');
  assert.ok(f.gw.auditRecords().find((r) => r.grant === g.id && r.type === 'pg.cancel'), 'the cancel is recorded in the session');
});

test('postgres.js query.cancel(): the statement fails with 57014 and the same connection goes on', async () => {
  const g = await grant(f);
  const sql = postgres(g.url, { max: 1, ssl: 'require', onnotice: () => {} });
  try {
    const pid = (await sql`select pg_backend_pid() as pid`)[0]!.pid as number;
    const q = sql`select pg_sleep(10)`;
    const failed = q.then(() => 'completed', (e: { code?: string }) => e.code ?? 'no code');
    await eventually(async () => (await cluster.sql(`select count(*) from pg_stat_activity where pid = ${pid} and state = 'active'`)).trim() === '1' || undefined, 5000, 'pg_sleep running upstream');
    q.cancel();
    assert.equal(await failed, '57014');
    const again = await sql`select pg_backend_pid() as pid, 42 as answer`;
    assert.deepEqual([...again], [{ pid, answer: 42 }]);
  } finally {
    await sql.end();
  }
});

test('a cancel request with a wrong key is ignored and recorded', async () => {
  const { connect } = await import('node:net');
  const before = f.gw.auditRecords().length;
  await new Promise<void>((resolve, reject) => {
    const msg = Buffer.alloc(16);
    msg.writeInt32BE(16, 0);
    msg.writeInt32BE(80877102, 4);
    msg.writeInt32BE(12345, 8);
    msg.writeInt32BE(67890, 12);
    const s = connect({ host: f.host, port: f.port }, () => s.write(msg));
    s.on('close', () => resolve());
    s.on('error', reject);
  });
  const rec = await eventually(() => f.gw.auditRecords().slice(before).find((r) => r.type === 'auth.failed' && /cancel/.test(String(r.data?.reason))), 3000, 'auth.failed for cancel');
  assert.equal(rec.outcome, 'denied');
});
