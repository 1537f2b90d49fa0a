/**
 * Queries through airlock end to end: real psql and postgres.js against a real PostgreSQL 15,
 * upstream over TLS with SCRAM, strict audit durability. Simple, prepared, pipelined, COPY in
 * and out, large results, LISTEN/NOTIFY, a read grant that cannot write, and the audit trail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { startCluster, startFixture, grant, psql, statementOutcomes, type PgFixture, type StatementOutcome } from './fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { eventually } from '../harness/gateway.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

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

function client(url: string, opts: postgres.Options<Record<string, postgres.PostgresType>> = {}) {
  return postgres(url, { max: 1, ssl: 'require', onnotice: () => {}, connect_timeout: 10, ...opts });
}

function recordsOf(grantId: string, type?: string): AuditRecord[] {
  return f.gw.auditRecords().filter((r) => r.grant === grantId && (type === undefined || r.type === type));
}

/** The grant's statement outcomes, whether recorded as pg.result or folded into the next pg.query. */
function outcomesOf(grantId: string): StatementOutcome[] {
  return statementOutcomes(recordsOf(grantId));
}

test('psql simple queries run, and each statement has one pg.query record with its SQL', async () => {
  const g = await grant(f);
  const statements = ['select count(*) from revenue', "select month from revenue where id = 7", 'select sum(amount) from revenue'];
  const r = await psql(g.env, statements.flatMap((s) => ['-c', s]));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['50', 'm7', '12750']);
  const queries = recordsOf(g.id, 'pg.query').map((q) => q.data?.sql);
  assert.deepEqual(queries, statements);
  // Outcomes follow once the server answered: row counts from CommandComplete.
  const results = await eventually(() => {
    const res = outcomesOf(g.id);
    return res.length === 3 ? res : undefined;
  }, 5000, 'three statement outcomes');
  assert.deepEqual(results.map((x) => x.rows), [1, 1, 1]);
  const qSeqs = recordsOf(g.id, 'pg.query').map((q) => q.seq);
  assert.deepEqual(results.map((x) => x.query), qSeqs);
});

test('a query string with several statements gets one pg.query per statement (split by the PostgreSQL parser)', async () => {
  const g = await grant(f);
  const r = await psql(g.env, ['-c', "select 'a;b' as x; select 2; -- trailing comment\n select 3"]);
  assert.equal(r.code, 0, r.stderr);
  const queries = recordsOf(g.id, 'pg.query');
  assert.deepEqual(queries.map((q) => q.data?.sql), ["select 'a;b' as x", 'select 2', 'select 3']);
  assert.deepEqual(queries.map((q) => q.data?.batch), [{ index: 0, of: 3 }, { index: 1, of: 3 }, { index: 2, of: 3 }]);
  const result = await eventually(() => outcomesOf(g.id)[0], 5000, 'the query\'s outcome');
  assert.equal(result.query, queries[0]!.seq);
  assert.deepEqual(result.commands, ['SELECT', 'SELECT', 'SELECT']);
});

test('prepared statements with parameters (postgres.js, extended protocol)', async () => {
  const g = await grant(f);
  const sql = client(g.url);
  try {
    for (let i = 1; i <= 5; i++) {
      const rows = await sql`select month, amount::int as amount from revenue where id = ${i}`;
      assert.deepEqual([...rows], [{ month: `m${i}`, amount: i * 10 }]);
    }
  } finally {
    await sql.end();
  }
  const queries = recordsOf(g.id, 'pg.query');
  const selects = queries.filter((q) => String(q.data?.sql).includes('from revenue where id = $1'));
  assert.equal(selects.length, 5, 'one pg.query per Execute');
  assert.equal(selects[0]!.data?.params, undefined, 'parameters are not recorded unless the resource asks');
});

test('a busy session folds each outcome into its next pg.query; an idle one writes it as pg.result, before session.closed', async () => {
  const g = await grant(f);
  const sql = client(g.url);
  try {
    await sql`select 1 as one`;
    await sql`select 2 as two`;
    // Idle now: the second outcome has no next statement to ride on.
    const alone = await eventually(() => recordsOf(g.id, 'pg.result')[0], 3000, 'the idle session\'s last outcome as pg.result');
    const [first, second] = recordsOf(g.id, 'pg.query').filter((q) => /^select [12] as/.test(String(q.data?.sql)));
    assert.ok(first && second, 'both statements recorded');
    assert.deepEqual(second.data?.done, [{ query: first.seq, rows: 1, ms: (second.data?.done as Array<{ ms: number }>)[0]!.ms, commands: ['SELECT'], outcome: 'ok' }]);
    assert.equal(alone.data?.query, second.seq);
    assert.equal(alone.data?.requestSeq, second.seq);
    assert.equal(alone.data?.rows, 1);
    assert.equal(recordsOf(g.id, 'session.closed').length, 0, 'written while the session is still open');
  } finally {
    await sql.end();
  }
  // Each statement has exactly one outcome, in one form or the other.
  const outcomes = outcomesOf(g.id);
  const seqs = recordsOf(g.id, 'pg.query').map((q) => q.seq);
  assert.deepEqual(outcomes.map((o) => o.query), seqs);
});

test('outcomes still parked when a session ends are written before its session.closed', async () => {
  const g = await grant(f);
  // psql sends Terminate right after the last result: well within the fold window.
  const r = await psql(g.env, ['-c', 'select 1', '-c', 'select 2']);
  assert.equal(r.code, 0, r.stderr);
  const closed = await eventually(() => recordsOf(g.id, 'session.closed')[0], 5000, 'session.closed');
  const queries = recordsOf(g.id, 'pg.query');
  const outcomes = outcomesOf(g.id);
  assert.deepEqual(outcomes.map((o) => o.query), queries.map((q) => q.seq));
  const last = recordsOf(g.id, 'pg.result').find((x) => x.data?.query === queries.at(-1)!.seq);
  assert.ok(last, 'the last statement\'s outcome is a pg.result of its own');
  assert.ok(last.seq < closed.seq, `pg.result ${last.seq} before session.closed ${closed.seq}`);
});

test('pipelined extended-protocol queries on one connection all answer in order', async () => {
  const g = await grant(f);
  const sql = client(g.url);
  try {
    const n = 200;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => sql`select ${i}::int as i, (select count(*)::int from revenue where id <= ${i % 50}) as c`));
    results.forEach((rows, i) => assert.deepEqual([...rows], [{ i, c: i % 50 }]));
  } finally {
    await sql.end();
  }
  const executes = recordsOf(g.id, 'pg.query').filter((q) => String(q.data?.sql).startsWith('select $1::int'));
  assert.equal(executes.length, 200);
});

test('large results stream through intact (20000 rows, ~5 MB)', async () => {
  const g = await grant(f);
  const r = await psql(g.env, ['-c', "select count(*), sum(length(payload)), md5(string_agg(payload, '' order by id)) from big"]);
  const expected = await cluster.sql("select count(*), sum(length(payload)), md5(string_agg(payload, '' order by id)) from big", 'reporting');
  assert.equal(r.stdout, expected);
  const all = await psql(g.env, ['-c', 'select id, payload from big order by id']);
  assert.equal(all.code, 0, all.stderr);
  const lines = all.stdout.trim().split('\n');
  assert.equal(lines.length, 20000);
  assert.match(lines[19999]!, /^20000\|[0-9a-f]{256}$/);
  const direct = await cluster.sql('select id, payload from big order by id', 'reporting');
  assert.equal(all.stdout, direct);
  const sql = client(g.url);
  try {
    const rows = await sql`select id, payload from big order by id`;
    assert.equal(rows.length, 20000);
    assert.equal(rows[12345]!.payload, direct.split('\n')[12345]!.split('|')[1]);
  } finally {
    await sql.end();
  }
  const res = await eventually(() => outcomesOf(g.id).find((x) => x.rows === 20000), 5000, 'an outcome with 20000 rows');
  assert.equal(res.outcome, 'ok');
});

test('COPY in and out through psql', async () => {
  const g = await grant(f, 'write');
  const input = Array.from({ length: 1000 }, (_, i) => `note ${i}\twith tab`.replace('\t', ' ')).join('\n') + '\n';
  const inRes = await psql(g.env, ['-c', '\\copy notes(body) from stdin'], input);
  assert.equal(inRes.code, 0, inRes.stderr);
  assert.equal(inRes.stdout.trim(), 'COPY 1000');
  const out = await psql(g.env, ['-c', '\\copy (select body from notes order by id) to stdout']);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, input);
  const copyRecord = recordsOf(g.id, 'pg.query').find((q) => /^copy\s+notes/i.test(String(q.data?.sql)));
  assert.ok(copyRecord, 'COPY FROM STDIN recorded');
  const res = await eventually(() => outcomesOf(g.id).find((x) => x.query === copyRecord.seq), 5000, 'COPY result');
  assert.equal(res.rows, 1000);
});

test('LISTEN/NOTIFY is delivered through airlock', async () => {
  const g1 = await grant(f);
  const g2 = await grant(f);
  const listener = client(g1.url);
  const notifier = client(g2.url);
  try {
    const got: string[] = [];
    const all = new Promise<void>((resolve) => {
      void listener.listen('airlock_test', (payload) => {
        got.push(payload);
        if (got.length === 3) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 200));
    await listener`select 1`; // LISTEN is in place once this round trip is done
    for (const p of ['a', 'b', 'c']) await notifier.notify('airlock_test', p);
    await Promise.race([all, new Promise((_, rej) => setTimeout(() => rej(new Error(`notifications: ${got.join(',')}`)), 5000))]);
    assert.deepEqual(got, ['a', 'b', 'c']);
  } finally {
    await listener.end();
    await notifier.end();
  }
});

test('a read grant cannot write: the upstream role refuses, the client and the audit see the error', async () => {
  const g = await grant(f, 'read');
  const r = await psql(g.env, ['-v', 'VERBOSITY=verbose', '-c', "insert into notes(body) values ('nope')"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /42501/);
  assert.match(r.stderr, /permission denied for table notes/);
  const q = recordsOf(g.id, 'pg.query').find((x) => String(x.data?.sql).startsWith('insert into notes'));
  assert.ok(q);
  const res = await eventually(() => outcomesOf(g.id).find((x) => x.query === q.seq), 5000, 'error result');
  assert.equal(res.outcome, 'error');
  assert.deepEqual(res.error?.code, '42501');
  const count = await cluster.sql("select count(*) from notes where body = 'nope'", 'reporting');
  assert.equal(count.trim(), '0');
  // The same statement with a write grant succeeds (the refusal came from the role, not from airlock).
  const w = await grant(f, 'write');
  const ok = await psql(w.env, ['-c', "insert into notes(body) values ('yes')"]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('sessions are recorded and the audit of the run verifies', async () => {
  const g = await grant(f);
  const r = await psql(g.env, ['-c', 'select 1']);
  assert.equal(r.code, 0, r.stderr);
  const closed = await eventually(() => recordsOf(g.id, 'session.closed')[0], 5000, 'session.closed');
  assert.equal(closed.data?.reason, 'client');
  const opened = recordsOf(g.id, 'session.opened')[0];
  assert.ok(opened);
  assert.equal(opened.session, closed.session);
  const q = recordsOf(g.id, 'pg.query')[0]!;
  assert.equal(q.session, opened.session);
  assert.equal(q.agent, 'local:report-bot');
  assert.equal(q.resource, 'reporting');
  const result = await verifyAuditFiles(f.gw.auditFiles(), { publicKeys: [f.gw.gateway.identity.key.publicJwk] });
  assert.equal(result.ok, true, JSON.stringify(result.failure));
  assert.ok(result.records > 10);
  // The same with the CLI an operator runs.
  const cli = await execFileAsync(join(process.cwd(), 'airlock'), ['audit', 'verify', ...f.gw.auditFiles(), '--data-dir', f.gw.dataDir]);
  assert.match(cli.stdout, /^ok: /);
});
