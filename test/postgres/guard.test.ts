/**
 * The guardrail on its own (pure function, real parser): what every level refuses, what a
 * SELECT-only level refuses, and what it lets through. The corpus test runs what it allows
 * against a real server; these name each rule.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadStatementParser } from '../../plugins/postgres/split-statements.ts';
import { decideQuery, SessionGuard, type GuardDecision } from '../../plugins/postgres/guard/index.ts';
import { decisionCacheHits } from '../../plugins/postgres/guard/decision-cache.ts';

before(() => loadStatementParser());

const ro = (sql: string) => decideQuery(sql, { readOnly: true });
const rw = (sql: string) => decideQuery(sql, { readOnly: false });

function refused(d: GuardDecision): { rule: string; message: string; sqlstate: string } {
  assert.equal(d.allowed, false, 'expected a refusal');
  if (d.allowed) throw new Error('unreachable');
  return { rule: d.rule, message: d.message, sqlstate: d.sqlstate };
}

const everyLevel: Array<[string, string]> = [
  ["ALTER ROLE agent_ro PASSWORD 'x'", 'role-change'],
  ["alter user current_user with password 'SCRAM-SHA-256$4096:abc'", 'role-change'],
  ['ALTER USER agent_ro VALID UNTIL \'infinity\'', 'role-change'],
  ['ALTER ROLE agent_ro SET search_path = x', 'role-change'],
  ['ALTER ROLE agent_ro RENAME TO boss', 'role-change'],
  ['CREATE ROLE x LOGIN', 'role-change'],
  ['CREATE USER x', 'role-change'],
  ['CREATE GROUP g', 'role-change'],
  ['ALTER GROUP g ADD USER x', 'role-change'],
  ['DROP ROLE x', 'role-change'],
  ['DROP USER IF EXISTS x', 'role-change'],
  ['DROP GROUP g', 'role-change'],
  ['GRANT postgres TO agent_ro', 'privilege-change'],
  ['GRANT SELECT ON secrets TO PUBLIC', 'privilege-change'],
  ['REVOKE SELECT ON sales FROM agent_ro', 'privilege-change'],
  ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC', 'privilege-change'],
  ['REASSIGN OWNED BY agent_ro TO postgres', 'role-change'],
  ['DROP OWNED BY agent_ro', 'role-change'],
  ['ALTER TABLE sales OWNER TO agent_ro', 'role-change'],
  ["CREATE USER MAPPING FOR agent_ro SERVER s OPTIONS (password 'x')", 'role-change'],
  ['SET ROLE postgres', 'session-role'],
  ['SET LOCAL ROLE postgres', 'session-role'],
  ['set role none', 'session-role'],
  ['RESET ROLE', 'session-role'],
  ['SET SESSION AUTHORIZATION postgres', 'session-role'],
  ['SET SESSION AUTHORIZATION DEFAULT', 'session-role'],
  ['RESET SESSION AUTHORIZATION', 'session-role'],
  ['SET session_replication_role = replica', 'session-role'],
  ["SELECT set_config('role', 'postgres', false)", 'session-role'],
  ["select pg_catalog.set_config('session_authorization', 'postgres', true)", 'session-role'],
  ['SELECT set_config($1, $2, false)', 'session-role'],
  ["SET standard_conforming_strings = off", 'lexing-setting'],
  ["SELECT set_config('standard_conforming_strings', 'off', false)", 'lexing-setting'],
  ['SET backslash_quote = on', 'lexing-setting'],
  ["DO $$ BEGIN EXECUTE 'ALTER ROLE agent_ro PASSWORD ''x'''; END $$", 'do-block'],
  ['select 1; alter role agent_ro password null', 'role-change'],
  ["PREPARE p AS SELECT set_config('role', 'x', false)", 'session-role'],
];
for (const [sql, rule] of everyLevel) {
  test(`every level refuses: ${sql}`, () => {
    for (const d of [ro(sql), rw(sql)]) {
      const r = refused(d);
      assert.equal(r.rule, rule);
      assert.equal(r.sqlstate, '42501');
      assert.match(r.message, new RegExp(`^airlock guardrail "${rule}": `));
    }
  });
}

const readOnlyRefused: Array<[string, string]> = [
  ["INSERT INTO sales VALUES (1)", 'write'],
  ['UPDATE sales SET amount = 0', 'write'],
  ['DELETE FROM sales', 'write'],
  ['MERGE INTO sales s USING refunds r ON s.id = r.id WHEN MATCHED THEN DELETE', 'write'],
  ['TRUNCATE sales', 'write'],
  ['CREATE TABLE t (a int)', 'ddl'],
  ['CREATE TEMP TABLE t (a int)', 'ddl'],
  ['DROP TABLE sales', 'ddl'],
  ['ALTER TABLE sales ADD COLUMN x int', 'ddl'],
  ['CREATE INDEX ON sales (id)', 'ddl'],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ select 1 $$', 'ddl'],
  ['COMMENT ON TABLE sales IS $$x$$', 'ddl'],
  ['REFRESH MATERIALIZED VIEW mv', 'ddl'],
  ['CREATE TABLE t AS SELECT 1', 'ddl'],
  ['COPY sales FROM STDIN', 'copy-from'],
  ["COPY sales TO '/tmp/x'", 'copy-file'],
  ["COPY sales TO PROGRAM 'cat'", 'copy-file'],
  ['CALL p()', 'call'],
  ['LOCK TABLE sales', 'lock'],
  ['LOCK sales IN ACCESS SHARE MODE', 'lock'],
  ['SELECT * FROM sales FOR UPDATE', 'row-lock'],
  ['SELECT * FROM sales FOR SHARE', 'row-lock'],
  ['SELECT * FROM sales FOR NO KEY UPDATE SKIP LOCKED', 'row-lock'],
  ['SELECT * FROM (SELECT * FROM sales FOR KEY SHARE) s', 'row-lock'],
  ['SELECT * INTO copy_of_sales FROM sales', 'select-into'],
  ['WITH d AS (DELETE FROM sales RETURNING *) SELECT * FROM d', 'writable-cte'],
  ['WITH i AS (INSERT INTO sales VALUES (1) RETURNING 1) SELECT 1', 'writable-cte'],
  ['EXPLAIN ANALYZE DELETE FROM sales', 'write'],
  ['EXPLAIN (ANALYZE, BUFFERS) INSERT INTO sales VALUES (1)', 'write'],
  ['PREPARE w AS DELETE FROM sales', 'write'],
  ['EXECUTE unknown_stmt', 'execute-unknown'],
  ['EXPLAIN EXECUTE unknown_stmt', 'execute-unknown'],
  ["SELECT nextval('sales_id_seq')", 'function'],
  ["SELECT setval('sales_id_seq', 1)", 'function'],
  ['SELECT txid_current()', 'function'],
  ['SELECT pg_current_xact_id()', 'function'],
  ['SELECT public.do_something()', 'function'],
  ['SELECT my_function(1)', 'function'],
  ['SELECT * FROM my_srf()', 'function'],
  ['SELECT pg_advisory_lock(1)', 'function'],
  ["SELECT lo_import('/etc/passwd')", 'function'],
  ["SELECT query_to_xml('delete from sales', true, true, '')", 'function'],
  ['SELECT pg_terminate_backend(1)', 'function'],
  ["SELECT set_config('search_path', 'x', false)", 'function'],
  ["select dblink_exec('insert into x values (1)')", 'function'],
  ['SELECT 1 === 2', 'operator'],
  ['SELECT 1 OPERATOR(public.+) 2', 'operator'],
  ["NOTIFY ch, 'x'", 'notify'],
  ['VACUUM sales', 'maintenance'],
  ['ANALYZE sales', 'maintenance'],
  ['CHECKPOINT', 'maintenance'],
  ["PREPARE TRANSACTION 'x'", 'two-phase'],
  ["COMMIT PREPARED 'x'", 'two-phase'],
  ['DECLARE c CURSOR FOR SELECT * FROM sales FOR UPDATE', 'row-lock'],
  ['select 1; delete from sales; select 2', 'write'],
  ['CREATE RULE r AS ON SELECT TO t DO INSTEAD SELECT 1', 'ddl'],
  ["LOAD 'plpgsql'", 'ddl'],
  ['DISCARD ALL; CLUSTER sales', 'ddl'],
  ['IMPORT FOREIGN SCHEMA x FROM SERVER s INTO public', 'ddl'],
  ['SECURITY LABEL ON TABLE sales IS $$x$$', 'ddl'],
  ['SET search_path = evil, pg_catalog', 'search-path'],
  ['SET LOCAL search_path TO public, "pg_catalog"', 'search-path'],
];
for (const [sql, rule] of readOnlyRefused) {
  test(`SELECT-only refuses (${rule}): ${sql}`, () => {
    const r = refused(ro(sql));
    assert.equal(r.rule, rule, r.message);
    assert.equal(r.sqlstate, '42501');
  });
}

const readOnlyAllowed = [
  'SELECT 1',
  '',
  '-- just a comment',
  'select * from sales where amount > 10 order by id limit 5',
  'SELECT count(*), sum(amount), avg(amount)::numeric(10,2) FROM sales GROUP BY month HAVING count(*) > 1',
  'SELECT lower(name), upper(name), length(name), coalesce(name, $$x$$), now(), current_user, current_date FROM customers',
  'WITH s AS (SELECT * FROM sales) SELECT * FROM s JOIN refunds r ON r.id = s.id',
  'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT sum(i) FROM n',
  'SELECT row_number() OVER (ORDER BY id), lag(amount) OVER w FROM sales WINDOW w AS (ORDER BY id)',
  "SELECT jsonb_build_object('a', 1) -> 'a', '{1,2}'::int[] @> ARRAY[1], 'abc' ~~ 'a%', 'x' || 'y'",
  'SELECT * FROM generate_series(1, 3) g, unnest(ARRAY[1,2]) u',
  'SELECT pg_catalog.lower($$X$$), 1 OPERATOR(pg_catalog.+) 2',
  'EXPLAIN SELECT * FROM sales',
  'EXPLAIN ANALYZE SELECT * FROM sales',
  'SHOW search_path',
  'SET search_path = public',
  'SET search_path = pg_catalog, public',
  'SET search_path TO DEFAULT',
  'SET statement_timeout = 1000',
  "SELECT set_config('application_name', 'x', false)".replace('set_config', 'current_setting').replace(", 'x', false", ''),
  'BEGIN; SELECT 1; COMMIT',
  'BEGIN READ ONLY',
  'START TRANSACTION ISOLATION LEVEL SERIALIZABLE',
  'ROLLBACK',
  'SAVEPOINT a; RELEASE SAVEPOINT a',
  'SET TRANSACTION READ ONLY',
  'DECLARE c CURSOR FOR SELECT * FROM sales; FETCH 10 FROM c; CLOSE c',
  'COPY sales TO STDOUT',
  'COPY (SELECT * FROM sales) TO STDOUT WITH (FORMAT csv)',
  'PREPARE p AS SELECT * FROM sales WHERE id = $1; EXECUTE p(1); DEALLOCATE p',
  'LISTEN ch; UNLISTEN ch',
  'DISCARD ALL',
  'RESET ALL',
  'TABLE sales',
  'VALUES (1), (2)',
  'SELECT random(), gen_random_uuid(), clock_timestamp()',
  "SELECT x FROM sales WHERE id = ANY ($1) AND name ILIKE '%a%' AND id BETWEEN 1 AND 2 AND id IS DISTINCT FROM 3",
  "SELECT CASE WHEN a THEN 1 END, NULLIF(1, 2), GREATEST(1, 2), EXTRACT(year FROM now()), substring('abc' from 2), trim(' a ')",
];
for (const sql of readOnlyAllowed) {
  test(`SELECT-only allows: ${JSON.stringify(sql)}`, () => {
    const d = ro(sql);
    assert.equal(d.allowed, true, d.allowed ? '' : d.message);
  });
}

test('write levels allow writes and DDL, still refusing role changes', () => {
  for (const sql of ['INSERT INTO sales VALUES (1)', 'DELETE FROM sales', 'CREATE TEMP TABLE t (a int)', 'SELECT nextval($$s$$)', 'LOCK sales', 'SELECT * FROM sales FOR UPDATE', 'CALL p()']) {
    const d = rw(sql);
    assert.equal(d.allowed, true, d.allowed ? '' : d.message);
  }
});

test('an unparsable statement is refused (42601), and so is everything with it', () => {
  for (const sql of ['SELEC 1', 'select 1; selec 2', "select 'unterminated", 'select 1\0; delete from x']) {
    const r = refused(ro(sql));
    assert.equal(r.rule, 'unparsable');
    assert.equal(r.sqlstate, '42601');
    assert.equal(refused(rw(sql)).rule, 'unparsable');
  }
});

test('the message of a multi-statement refusal says which statement and that nothing ran', () => {
  const d = ro('select 1; select 2; update sales set amount = 1');
  const r = refused(d);
  assert.equal(r.message, 'airlock guardrail "write": UPDATE is not allowed (statement 3 of 3; nothing of this query ran)');
  assert.equal(d.allowed === false && d.statement, 2);
});

test('EXECUTE is allowed only for statements this session prepared read-only', () => {
  const s = new SessionGuard(true);
  assert.equal(s.decide('EXECUTE p').allowed, false);
  assert.equal(s.decide('PREPARE w AS DELETE FROM sales').allowed, false);
  assert.equal(s.decide('EXECUTE w').allowed, false);
  assert.equal(s.decide('PREPARE p AS SELECT 1').allowed, true);
  assert.equal(s.decide('EXECUTE p').allowed, true);
  assert.equal(s.decide('DEALLOCATE p').allowed, true);
  assert.equal(s.decide('EXECUTE p').allowed, false);
  s.parsed('proto1');
  assert.equal(s.decide('EXECUTE proto1').allowed, true);
  assert.equal(s.decide('DEALLOCATE ALL').allowed, true);
  assert.equal(s.decide('EXECUTE proto1').allowed, false);
  assert.equal(s.decide('PREPARE q AS SELECT 1; EXECUTE q').allowed, true);
});

test('a repeated text is answered from the decision cache exactly as the parser first decided it, per level', () => {
  const texts = ['select * from sales where id = 1', "insert into sales (month, amount) values ('x', 1)", "ALTER ROLE agent_ro PASSWORD 'x'", 'select pg_sleep(1)', 'selec broken'];
  const first = texts.map((sql) => [JSON.stringify(ro(sql)), JSON.stringify(rw(sql))]);
  for (let round = 0; round < 3; round++) {
    assert.deepEqual(texts.map((sql) => [JSON.stringify(ro(sql)), JSON.stringify(rw(sql))]), first);
  }
  // The same text is refused under a read-only level and allowed under a write level: the
  // cache of one level never answers for the other.
  assert.equal(ro(texts[1]!).allowed, false);
  assert.equal(rw(texts[1]!).allowed, true);
  // A cached allowed decision hands back the session's own prepared statements, unchanged.
  const mine = new Set(['p1']);
  const d = decideQuery(texts[0]!, { readOnly: true, preparedReadOnly: mine });
  assert.ok(d.allowed && d.preparedReadOnly === mine);
});

test('texts that differ only in literals are answered by their shape, once a decision is known not to depend on a literal', () => {
  const before = decisionCacheHits().byShape;
  const decisions = Array.from({ length: 20 }, (_, i) => ro(`select * from sales where id = ${1000 + i} and month = 'm${i}'`));
  assert.ok(decisions.every((d) => d.allowed));
  // The first two texts of the shape are parsed (the second records the shape); the rest are answered by it.
  assert.equal(decisionCacheHits().byShape - before, 18);
  // A write seen under its shape is still refused at a SELECT-only level and allowed at a write level.
  for (let i = 0; i < 5; i++) {
    assert.equal(refused(ro(`insert into sales (month, amount) values ('x${i}', ${i})`)).rule, 'write');
    assert.equal(rw(`insert into sales (month, amount) values ('y${i}', ${i})`).allowed, true);
  }
});

test('a decision that read a literal is never lent to another text of its shape', () => {
  // Each pair: the same shape, the allowed text first (many times, so its shape is known), then
  // the text whose literal the rule refuses.
  const pairs: Array<[(sql: string) => GuardDecision, (i: number) => string, string, string]> = [
    [rw, (i) => `SELECT set_config('application_name', 'job${i}', false)`, "SELECT set_config('role', 'postgres', false)", 'session-role'],
    [rw, (i) => `select pg_catalog.set_config('statement_timeout', '${i}s', true)`, "select pg_catalog.set_config('session_authorization', 'postgres', true)", 'session-role'],
    [rw, (i) => `SET standard_conforming_strings = ${['on', 'true', 'yes', "'on'"][i % 4]}`, 'SET standard_conforming_strings = off', 'lexing-setting'],
    [ro, (i) => `SET search_path = pg_catalog, s${i}`, 'SET search_path = s1, pg_catalog', 'search-path'],
    [ro, (i) => `SET search_path = 'pg_catalog', 's${i}'`, "SET search_path = 's1', 'pg_catalog'", 'search-path'],
  ];
  for (const [decide, allowed, refusedText, rule] of pairs) {
    for (let i = 0; i < 6; i++) assert.equal(decide(allowed(i)).allowed, true, allowed(i));
    assert.equal(refused(decide(refusedText)).rule, rule, refusedText);
    // And the other way round: a refused literal first does not refuse the allowed ones.
    assert.equal(refused(decide(refusedText.replace('postgres', 'x').replace('s1', 's2'))).rule, rule);
    assert.equal(decide(allowed(99)).allowed, true);
  }
  // A parameter where the first texts had a constant: the rule refuses a setting name it cannot read.
  for (let i = 0; i < 6; i++) assert.equal(rw(`SELECT set_config('application_name', 'x', false) WHERE ${i} = ${i}`).allowed, true);
  assert.equal(refused(rw('SELECT set_config($1, $2, false) WHERE 1 = 1')).rule, 'session-role');
});

test('a hostile, deeply nested query is refused, not a crash', () => {
  const deep = 'SELECT ' + '('.repeat(5000) + '1' + ')'.repeat(5000);
  // Deep but a plain read: decided (allowed), not thrown.
  assert.equal(ro(deep).allowed, true);
  const wide = 'SELECT ' + Array.from({ length: 60_000 }, (_, i) => String(i)).join(' + ');
  const r = refused(ro(wide));
  assert.ok(['unparsable', 'too-complex'].includes(r.rule), r.rule);
});
