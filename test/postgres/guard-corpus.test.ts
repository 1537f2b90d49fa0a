/**
 * Corpus test of the guardrail under a SELECT-only level: thousands of statements (generated
 * reads, writes and DDL in every wrapper, a call of every pg_catalog function, and every
 * statement of the SQL PostgreSQL ships on this machine) are decided; each one it allows is
 * run on a real PostgreSQL 15 as the superuser (every privilege) inside a transaction that is
 * rolled back, and `pg_current_xact_id_if_assigned()` must stay null: no transaction id
 * means nothing was written. Control statements that do write go through the same harness
 * and must show a transaction id, so the check is shown able to fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { loadStatementParser } from '../../plugins/postgres/split-statements.ts';
import { decideQuery } from '../../plugins/postgres/guard/index.ts';
import { CORPUS_SCHEMA, functionCalls, generatedStatements, shippedSql, type FunctionSignature } from './guard-corpus.ts';

let cluster: PostgresCluster;
before(async () => {
  await loadStatementParser();
  cluster = await startPostgresCluster({ ssl: false });
  await cluster.sql('create database corpus');
  await cluster.sql(CORPUS_SCHEMA, 'corpus');
});
after(async () => {
  await cluster?.stop();
});

/** Transaction control would end the harness's own transaction: decided, counted, not run. */
const TRANSACTION_CONTROL = /^\s*(begin|start|commit|end|rollback|abort|savepoint|release|prepare\s+transaction)\b/i;

/**
 * Run each statement in its own rolled-back transaction through one psql session and return
 * the transaction id each left assigned (null = none). psql sends the statement as written
 * (COPY TO STDOUT included); an error is rolled back to the savepoint so the check still runs.
 */
async function xidsAfter(statements: readonly string[]): Promise<Array<{ xid: string | null; failed: boolean }>> {
  const script = statements
    .map((s, i) => `BEGIN;\nSAVEPOINT corpus;\n${s}\n;\n\\set failed :ERROR\nROLLBACK TO SAVEPOINT corpus;\nSELECT 'XID:${i}:' || :'failed' || ':' || coalesce(pg_current_xact_id_if_assigned()::text, 'null');\nROLLBACK;\n`)
    .join('');
  const file = join(cluster.dir, `corpus-${statements.length}-${Date.now()}.sql`);
  writeFileSync(file, script);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('psql', ['-X', '-q', '-At', '-h', cluster.host, '-p', String(cluster.port), '-U', cluster.superuser, '-d', 'corpus', '-f', file], {
      env: { PATH: process.env.PATH ?? '', PGPASSWORD: cluster.superuserPassword, PGSSLMODE: 'disable', PGOPTIONS: '-c statement_timeout=5s -c client_min_messages=error' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(stdout));
  });
  const xids = new Map<number, { xid: string | null; failed: boolean }>();
  for (const line of out.split('\n')) {
    const m = /^XID:(\d+):(true|false):(.+)$/.exec(line);
    if (m) xids.set(Number(m[1]), { failed: m[2] === 'true', xid: m[3] === 'null' ? null : m[3]! });
  }
  return statements.map((_, i) => {
    if (!xids.has(i)) throw new Error(`statement ${i} left no check line (the harness lost its session?): ${statements[i]!.slice(0, 200)}`);
    return xids.get(i)!;
  });
}

async function pgCatalogFunctions(): Promise<FunctionSignature[]> {
  // Up to two overloads of every pg_catalog function, with their argument type names.
  const rows = await cluster.sql(
    `select proname || '|' || prokind::text || '|' || coalesce((select string_agg(t.typname, ',' order by a.ord) from unnest(p.proargtypes::oid[]) with ordinality a(oid, ord) join pg_type t on t.oid = a.oid), '')
       from (select p.*, row_number() over (partition by proname order by pronargs, oid) n from pg_proc p
              where pronamespace = 'pg_catalog'::regnamespace and prokind in ('f', 'a', 'w') ) p
      where n <= 2 order by proname, n`,
    'corpus',
  );
  return rows.split('\n').filter(Boolean).map((l) => {
    const [name, kind, args] = l.split('|') as [string, string, string];
    return { name, kind, argTypes: args ? args.split(',') : [] };
  });
}

test('nothing the guard allows under a SELECT-only level writes (corpus run on PostgreSQL 15)', { timeout: 900_000 }, async (t) => {
  const sources: Array<[string, string[]]> = [
    ['generated', generatedStatements()],
    ['pg_catalog functions', [...functionCalls(await pgCatalogFunctions())]],
    ['shipped PostgreSQL SQL', [...shippedSql()].map((s) => s.sql)],
  ];
  const allowed: string[] = [];
  const skipped: string[] = [];
  const refusedBy = new Map<string, number>();
  let total = 0;
  for (const [source, statements] of sources) {
    let a = 0;
    for (const sql of statements) {
      total++;
      const d = decideQuery(sql, { readOnly: true });
      if (!d.allowed) {
        refusedBy.set(d.rule, (refusedBy.get(d.rule) ?? 0) + 1);
        continue;
      }
      a++;
      if (sql.split(';').some((part) => TRANSACTION_CONTROL.test(part))) skipped.push(sql);
      else allowed.push(sql);
    }
    t.diagnostic(`${source}: ${statements.length} statements, ${a} allowed`);
  }
  const refused = [...refusedBy.values()].reduce((x, y) => x + y, 0);
  t.diagnostic(`total ${total}: allowed ${allowed.length + skipped.length} (run ${allowed.length}, transaction control not run ${skipped.length}), refused ${refused}`);
  t.diagnostic(`refused by rule: ${[...refusedBy].sort((x, y) => y[1] - x[1]).map(([r, n]) => `${r} ${n}`).join(', ')}`);
  assert.ok(total >= 5000, `a corpus of thousands (got ${total})`);
  assert.ok(allowed.length >= 1000 && refused >= 1000, 'the corpus exercises both sides');

  const results = await xidsAfter(allowed);
  const failed = results.filter((r) => r.failed).length;
  t.diagnostic(`run: ${allowed.length - failed} succeeded, ${failed} failed on the server (bad sample arguments, missing objects), all rolled back`);
  assert.ok(allowed.length - failed >= allowed.length / 2, 'most allowed statements really ran');
  const wrote = allowed.filter((_, i) => results[i]!.xid !== null);
  assert.deepEqual(wrote, [], `allowed statements that assigned a transaction id:\n${wrote.slice(0, 20).join('\n')}`);
});

test('the harness sees a write: writing statements leave a transaction id', async () => {
  const controls = ['INSERT INTO refunds (amount) VALUES (1)', 'SELECT txid_current()', "SELECT nextval('counter')", 'SELECT bump()', 'SELECT * FROM sales FOR UPDATE', 'CREATE TEMP TABLE x (a int)'];
  const results = await xidsAfter(controls);
  for (const [i, r] of results.entries()) assert.notEqual(r.xid, null, `${controls[i]} should have assigned a transaction id`);
  const [ok, bad] = await xidsAfter(['SELECT 1', 'SELECT * FROM no_such_table']);
  assert.deepEqual([ok, bad], [{ xid: null, failed: false }, { xid: null, failed: true }]);
  for (const sql of controls) assert.equal(decideQuery(sql, { readOnly: true }).allowed, false, sql);
});

test("the guard's built-in function and operator lists match this PostgreSQL's catalogue", async () => {
  const { catalogueBuiltins } = await import('./guard-builtins.ts');
  const { READ_ONLY_FUNCTIONS, BUILTIN_OPERATORS } = await import('../../plugins/postgres/guard/builtins.ts');
  const live = await catalogueBuiltins(cluster);
  assert.deepEqual([...READ_ONLY_FUNCTIONS].sort(), live.functions.sort(), 'regenerate with node --import tsx test/postgres/guard-builtins.ts');
  assert.deepEqual([...BUILTIN_OPERATORS].sort(), live.operators.sort());
});
