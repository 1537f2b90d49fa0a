/**
 * Fidelity: a client cannot tell airlock from the server (issue 17). Each scenario runs the
 * same bytes on a direct connection to the real PostgreSQL 15 and through airlock, as the
 * same database role, and compares every backend message byte for byte (rows, column types,
 * command tags, error fields, notices, ParameterStatus, transaction states). Then what can
 * only be checked beside the server: process ids and cancels, the server's own startup
 * errors and FATALs, channel binding, and the plaintext rule.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, startFixture, grant, psql, spawnPsql, collect, ROLE_PASSWORD, type PgFixture } from './fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { eventually } from '../harness/gateway.ts';
import { i32, rawSession, untyped, type RawSession } from './raw-client.ts';
import { exchange, fieldsOf, msg, shape, type BackendMessage } from './wire-exchange.ts';
import { connect } from 'node:net';

let cluster: PostgresCluster;
let f: PgFixture;
before(async () => {
  cluster = await startCluster();
  f = await startFixture(cluster, { listenerExtra: 'allowPlaintext: true' });
});
after(async () => {
  await f?.close();
  await cluster?.stop();
});

const direct = (user = 'agent_rw', params: Record<string, string> = {}) => rawSession(cluster.host, cluster.port, { id: user, secret: ROLE_PASSWORD }, params);
const through = async (access: 'read' | 'write' = 'write', params: Record<string, string> = {}) => rawSession(f.host, f.port, await grant(f, access), params);

type Step = { send: Buffer; readies?: number };

/** Run the steps on a session; each step's messages as `type:hex`, with long streams hashed. */
async function run(s: RawSession, steps: Step[]): Promise<string[][]> {
  const out: string[][] = [];
  try {
    for (const step of steps) {
      const { messages } = await exchange(s.sock, step.send, step.readies ?? 1);
      out.push(render(messages));
    }
  } finally {
    s.sock.destroy();
  }
  return out;
}

function render(messages: BackendMessage[]): string[] {
  const lines = messages.map((m) => `${m.type}:${m.body.toString('hex')}`);
  if (lines.length <= 200) return lines;
  const hash = createHash('sha256');
  for (const l of lines) hash.update(l).update('\n');
  return [`${lines.length} messages`, shape(messages).filter((t) => t !== 'D' && t !== 'd').join(''), hash.digest('hex')];
}

async function compare(steps: Step[]): Promise<string[][]> {
  const viaDirect = await run(await direct(), steps);
  const viaAirlock = await run(await through(), steps);
  assert.deepEqual(viaAirlock, viaDirect);
  return viaAirlock;
}

const q = (sql: string, readies = 1): Step => ({ send: msg.query(sql), readies });
const types = (rendered: string[]) => rendered.map((l) => l.split(':', 1)[0]).join('');

test('greeting: the same ParameterStatus values as a direct login', async () => {
  const d = await direct();
  const a = await through();
  d.sock.destroy();
  a.sock.destroy();
  assert.deepEqual(Object.fromEntries(a.parameters), Object.fromEntries(d.parameters));
});

test('simple protocol: rows, column types, tags, an error mid-batch, an empty query', async () => {
  const r = await compare([
    q("select 1 as a, 'x'::text as b, 2.5::numeric as c, null::int as d, '2024-01-02'::date as e"),
    q('select id, month, amount from revenue where id < 4 order by id; select count(*) from revenue'),
    q('select 1; select 1/0; select 2'),
    q(''),
  ]);
  assert.equal(types(r[2]!), 'TDCEZ');
});

test('extended protocol: named statement, named portal with a row limit, Describe, Close', async () => {
  const r = await compare([
    q('begin'),
    { send: Buffer.concat([
      msg.parse('p1', 'select id, month from revenue where id > $1::int order by id'),
      msg.describe('S', 'p1'),
      msg.sync(),
    ]) },
    { send: Buffer.concat([
      msg.bindText('c1', 'p1', ['40']),
      msg.describe('P', 'c1'), msg.execute('c1', 3), msg.execute('c1', 3), msg.execute('c1', 0), msg.close('P', 'c1'), msg.sync(),
    ]) },
    q('commit'),
  ]);
  assert.equal(types(r[2]!), '2TDDDsDDDsDDDDC3Z');
});

test('pipelines: an error skips to the Sync, the next segment runs', async () => {
  const seg = (sql: string) => Buffer.concat([msg.parse('', sql), msg.bind('', ''), msg.execute('')]);
  const r = await compare([
    { send: Buffer.concat([seg('select 1'), seg('select 1/0'), seg('select 3'), msg.sync(), seg('select 4'), msg.sync()]), readies: 2 },
    { send: Buffer.concat([msg.parse('n', 'select $1::int + 1'), msg.describe('S', 'n'), msg.close('S', 'n'), msg.close('S', 'n'), msg.sync()]) },
  ]);
  // 1/0 is folded while planning: the error comes at Bind.
  assert.equal(types(r[0]!), '12DC1EZ12DCZ');
  assert.equal(types(r[1]!), '1tT33Z');
});

test('large results: 20,000 rows of 256 bytes arrive identical', async () => {
  const r = await compare([q('select * from big order by id')]);
  assert.equal(r[0]![0], '20003 messages');
});

test('COPY out, COPY in, COPY in with bad data and with CopyFail', async () => {
  const r = await compare([
    q('copy (select id, month, amount from revenue order by id) to stdout'),
    { send: Buffer.concat([msg.query('copy notes (body) from stdin'), msg.copyData('one\ntwo\n'), msg.copyDone()]) },
    { send: Buffer.concat([msg.query('copy revenue (id, month, amount) from stdin'), msg.copyData('x\ty\tz\n'), msg.copyDone()]) },
    { send: Buffer.concat([msg.query('copy notes (body) from stdin'), msg.copyData('three\n'), msg.copyFail('client gave up')]) },
  ]);
  assert.equal(types(r[1]!), 'GCZ');
  assert.equal(fieldsOf(Buffer.from(r[2]!.find((l) => l.startsWith('E'))!.slice(2), 'hex')).C, '22P02');
  assert.equal(fieldsOf(Buffer.from(r[3]!.find((l) => l.startsWith('E'))!.slice(2), 'hex')).C, '57014');
});

test('a 12 MB value: one the server returns and one the client sends arrive identical', async () => {
  const twelve = 12 * 1024 * 1024;
  await compare([q(`select repeat('x', ${twelve}) as v`), q(`select length('${'y'.repeat(twelve)}') as n`)]);
});

test('\\lo_import through psql stores the same large object a direct connection stores (FunctionCall)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-lo-'));
  try {
    const file = join(dir, 'blob.bin');
    const bytes = randomBytes(200_000);
    writeFileSync(file, bytes);
    const want = createHash('md5').update(bytes).digest('hex');
    const g = await grant(f, 'write');
    const directEnv = { PGHOST: cluster.host, PGPORT: String(cluster.port), PGUSER: 'agent_rw', PGPASSWORD: ROLE_PASSWORD, PGDATABASE: g.env.PGDATABASE!, PGSSLMODE: 'disable' };
    const md5s: string[] = [];
    for (const env of [directEnv, g.env]) {
      const imported = await psql(env, ['-c', `\\lo_import ${file}`]);
      assert.equal(imported.code, 0, imported.stderr);
      const oid = /lo_import (\d+)/.exec(imported.stdout)?.[1];
      assert.ok(oid, `psql printed the new object's oid: ${imported.stdout}`);
      const read = await psql(env, ['-c', `select md5(lo_get(${oid}))`, '-c', `select lo_unlink(${oid})`]);
      assert.equal(read.code, 0, read.stderr);
      md5s.push(read.stdout.split('\n')[0]!);
    }
    assert.deepEqual(md5s, [want, want], 'both paths stored exactly the file');
    // The large-object calls psql made are in the record (FunctionCall, by function oid).
    await eventually(() => f.gw.auditRecords().some((r) => r.type === 'pg.query' && r.grant === g.id && typeof r.data?.functionOid === 'number'), 5000, 'a pg.query record for a FunctionCall');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('3,000 notices in one statement arrive identical and in order', async () => {
  // A function, not a DO block: the guardrail refuses DO in every level (it can hide any statement).
  await cluster.sql("create or replace function airlock_test_notices(n int) returns void language plpgsql as $f$ begin for i in 1..n loop raise notice 'n %', i; end loop; end $f$", 'reporting');
  const r = await compare([q('select airlock_test_notices(3000)')]);
  assert.equal(r[0]![0], '3004 messages');
});

test('settings (ParameterStatus on SET) and transaction states (I, T, E)', async () => {
  const r = await compare([
    q("set datestyle = 'SQL, DMY'"),
    q("set timezone = 'America/New_York'; select '2024-01-02 03:04:05+00'::timestamptz"),
    q('set application_name = fidelity'),
    q('begin'),
    q('select 1/0'),
    q('select 1'),
    q('rollback'),
  ]);
  assert.ok(r[0]!.some((l) => l.startsWith('S:')), 'ParameterStatus DateStyle');
  const status = r.slice(3).map((x) => x.at(-1));
  assert.deepEqual(status, ['Z:54', 'Z:45', 'Z:45', 'Z:49']);
});

test('processID is the server pid: pg_backend_pid() and a notification say the same, pg_cancel_backend works', async () => {
  const a = await through();
  const b = await through();
  try {
    const pid = await exchange(a.sock, msg.query('select pg_backend_pid()'));
    assert.equal(Number(dataRowText(pid.messages)), a.pid);
    await exchange(a.sock, msg.query('listen fidelity'));
    const note = await exchange(a.sock, msg.query("notify fidelity, 'hello'"));
    const n = note.messages.find((m) => m.type === 'A')!;
    assert.equal(n.body.readInt32BE(0), a.pid, 'a self-notification carries our own pid (clients drop their own NOTIFYs by it)');
    // Another session cancels by pid, as an operator would.
    const sleeping = exchange(a.sock, msg.query('select pg_sleep(30)'));
    await eventually(async () => (/active/.test(await cluster.sql(`select state from pg_stat_activity where pid = ${a.pid}`)) ? true : undefined), 5000, 'sleep running');
    const cancelled = await exchange(b.sock, msg.query(`select pg_cancel_backend(${a.pid})`));
    assert.equal(dataRowText(cancelled.messages), 't');
    const r = await sleeping;
    assert.equal(fieldsOf(r.messages.find((m) => m.type === 'E')!.body).C, '57014');
    // A CancelRequest with (pid, airlock's key) still works; the upstream's key is never shown.
    const again = exchange(a.sock, msg.query('select pg_sleep(30)'));
    await eventually(async () => (/active/.test(await cluster.sql(`select state from pg_stat_activity where pid = ${a.pid}`)) ? true : undefined), 5000, 'sleep running');
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host: f.host, port: f.port }, () => s.end(untyped(Buffer.concat([i32(80877102), i32(a.pid), a.key]))));
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    const r2 = await again;
    assert.equal(fieldsOf(r2.messages.find((m) => m.type === 'E')!.body).C, '57014');
  } finally {
    a.sock.destroy();
    b.sock.destroy();
  }
});

function dataRowText(messages: BackendMessage[]): string {
  const d = messages.find((m) => m.type === 'D')!;
  const len = d.body.readInt32BE(2);
  return d.body.toString('utf8', 6, 6 + len);
}

test("psql's cancel (SIGINT → CancelRequest) still works", async () => {
  const g = await grant(f);
  const child = spawnPsql(g.env, ['-c', 'select pg_sleep(30)']);
  const done = collect(child);
  await eventually(async () => (/pg_sleep/.test(await cluster.sql("select query from pg_stat_activity where state = 'active'")) ? true : undefined), 10_000, 'psql sleeping');
  child.kill('SIGINT');
  const r = await done;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /canceling statement due to user request/);
  assert.ok(f.gw.auditRecords().some((x) => x.grant === g.id && x.type === 'pg.cancel'));
});

test("a server's startup refusal keeps its SQLSTATE and message (53300), with a detail naming airlock", async () => {
  await cluster.sql('alter role agent_ro connection limit 0');
  try {
    const d = await direct('agent_ro').then(() => null, (e: Error) => e);
    assert.match(String(d?.message), /C53300/);
    assert.match(String(d?.message), /too many connections for role "agent_ro"/);
    const g = await grant(f);
    const r = await psql(g.env, ['-c', 'select 1']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /too many connections for role "agent_ro"/);
    assert.match(r.stderr, /airlock relayed this error from the upstream server/);
    const pg = await import('postgres');
    const sql = pg.default(g.url, { max: 1, ssl: 'require', connect_timeout: 10 });
    const err = await sql`select 1`.then(() => null, (e: { code?: string; message?: string }) => e);
    await sql.end();
    assert.equal(err?.code, '53300');
    assert.equal(err?.message, 'too many connections for role "agent_ro"');
  } finally {
    await cluster.sql('alter role agent_ro connection limit -1');
  }
});

test('after pg_terminate_backend the client gets the server FATAL once, and nothing after it', async () => {
  const outcomes: string[][] = [];
  for (const open of [() => direct(), () => through()]) {
    const s = await open();
    const ended = exchange(s.sock, Buffer.alloc(0), 1);
    await cluster.sql(`select pg_terminate_backend(${s.pid})`);
    const r = await ended;
    assert.equal(r.closed, true);
    outcomes.push(shape(r.messages));
    s.sock.destroy();
  }
  assert.deepEqual(outcomes[1], outcomes[0]);
  assert.deepEqual(outcomes[1], ['E:57P01']);
});

test('PGCHANNELBINDING=require psql connects over TLS (SCRAM-SHA-256-PLUS, tls-server-end-point)', async () => {
  const g = await grant(f);
  const r = await psql({ ...g.env, PGCHANNELBINDING: 'require' }, ['-c', 'select 1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '1');
  // Without TLS there is nothing to bind to: a client requiring it refuses to go on.
  const plain = await psql({ ...g.env, PGSSLMODE: 'disable', PGCHANNELBINDING: 'require' }, ['-c', 'select 1']);
  assert.notEqual(plain.code, 0);
  assert.match(plain.stderr, /channel binding/);
  // Plain SCRAM-SHA-256 is still offered and works.
  const prefer = await psql({ ...g.env, PGCHANNELBINDING: 'disable' }, ['-c', 'select 2']);
  assert.equal(prefer.stdout.trim(), '2', prefer.stderr);
});

test('with TLS configured a plaintext client is refused (28000, auth.failed) unless allowPlaintext', async () => {
  const strict = await startFixture(cluster);
  try {
    const res = await strict.gw.requestGrant(strict.token, { resource: 'reporting', access: 'read', ttl: '1m', task: 'plaintext' });
    const env = res.body.connect!.env;
    const r = await psql({ ...env, PGSSLMODE: 'disable' }, ['-c', 'select 1']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /requires TLS: connect with sslmode=require/);
    const failed = await eventually(() => strict.gw.auditRecords().find((x) => x.type === 'auth.failed'), 3000, 'auth.failed');
    assert.match(String(failed.data?.reason), /plaintext/);
    const tls = await psql(env, ['-c', 'select 1']);
    assert.equal(tls.stdout.trim(), '1', tls.stderr);
  } finally {
    await strict.close();
  }
  const g = await grant(f);
  const allowed = await psql({ ...g.env, PGSSLMODE: 'disable' }, ['-c', 'select 3']);
  assert.equal(allowed.stdout.trim(), '3', allowed.stderr);
});
