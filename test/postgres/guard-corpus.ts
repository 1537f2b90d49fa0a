/**
 * Statements for the guardrail corpus test: generated combinatorially (reads, writes and DDL
 * over the fixture's tables, in every wrapper a query can hide a statement in), one call of
 * every pg_catalog function with sample arguments of its own types, and every statement of
 * the SQL that ships with PostgreSQL on this machine (`pg_config --sharedir`).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSync } from 'libpg-query';

export const CORPUS_SCHEMA = `
create table customers (id serial primary key, name text not null, email text);
create table sales (id serial primary key, month text not null, amount numeric not null, customer_id int references customers(id));
create table refunds (id serial primary key, sale_id int, amount numeric);
create table secrets (id int primary key, token text);
create table events (id bigserial primary key, at timestamptz default now(), payload jsonb);
create sequence counter;
create view big_sales as select * from sales where amount > 100;
create materialized view monthly as select month, sum(amount) total from sales group by month;
create function public.bump() returns int language sql as $$ insert into refunds(amount) values (1) returning id $$;
create function public.pure(x int) returns int language sql immutable as $$ select x + 1 $$;
insert into customers (name, email) select 'c' || g, 'c' || g || '@x' from generate_series(1, 20) g;
insert into sales (month, amount, customer_id) select 'm' || (g % 12), g * 7, 1 + g % 20 from generate_series(1, 200) g;
insert into refunds (sale_id, amount) select g, g from generate_series(1, 10) g;
insert into secrets values (1, 'top');
insert into events (payload) select jsonb_build_object('n', g) from generate_series(1, 20) g;
`;

const TABLES = ['sales', 'customers', 'refunds', 'secrets', 'events', 'big_sales', 'monthly', 'public.sales', 'counter'];

function* reads(): Generator<string> {
  const projections = ['*', 'count(*)', 'id', 'id, id + 1 AS next', 'row_number() OVER (ORDER BY id)', "coalesce(id::text, 'x') || 'y'", 'max(id), min(id)', 'DISTINCT id', 'to_jsonb(t)', "length(t::text), md5(t::text)"];
  const filters = ['', ' WHERE id > 1', ' WHERE id IN (SELECT id FROM sales)', ' WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = t.id)', " WHERE id::text ~ '^1'", ' WHERE id = ANY (ARRAY[1,2,3])', ' WHERE id BETWEEN 1 AND 5 AND id IS NOT NULL'];
  const tails = ['', ' ORDER BY 1 LIMIT 3', ' LIMIT 1 OFFSET 1', ' GROUP BY 1', ' FETCH FIRST 2 ROWS ONLY'];
  for (const table of TABLES)
    for (const p of projections)
      for (const f of filters)
        for (const tail of tails) {
          const aggregate = /count|max|row_number/.test(p);
          if (aggregate && tail.includes('GROUP')) continue;
          yield `SELECT ${p} FROM ${table} t${f}${tail}`;
        }
  yield* [
    'SELECT 1', 'VALUES (1), (2)', 'TABLE sales', 'SELECT * FROM generate_series(1, 5) g', 'SELECT now(), current_user, session_user, current_schema()',
    'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n',
    'SELECT s.month, sum(s.amount) FROM sales s JOIN customers c ON c.id = s.customer_id GROUP BY ROLLUP (s.month)',
    'SELECT * FROM sales TABLESAMPLE SYSTEM (50)', 'SELECT * FROM ROWS FROM (generate_series(1,2), unnest(ARRAY[1]))',
    'SELECT pure(1)', 'SELECT bump()', 'SELECT public.bump()', "SELECT nextval('counter')", 'SELECT txid_current()', 'SELECT pg_current_xact_id()',
    'SELECT txid_current_if_assigned()', "SELECT pg_advisory_xact_lock(1)", 'SHOW ALL', 'SHOW search_path', 'SET search_path = public', 'SET LOCAL work_mem = 65536',
    'RESET search_path', 'LISTEN ch', 'UNLISTEN *', 'DISCARD PLANS', 'DISCARD TEMP', 'DECLARE c CURSOR FOR SELECT 1; FETCH 1 FROM c; CLOSE c',
    'PREPARE p AS SELECT * FROM sales WHERE id = $1; EXECUTE p(1); DEALLOCATE p', 'COPY sales TO STDOUT', 'COPY (SELECT * FROM customers) TO STDOUT (FORMAT csv)',
    "SELECT query_to_xml('select 1', true, true, '')", "SELECT xmlelement(name a, 1)", "SELECT jsonb_path_query('{\"a\":1}', '$.a')",
  ];
}

const WRITES = [
  (t: string) => `INSERT INTO ${t} DEFAULT VALUES`,
  (t: string) => `INSERT INTO ${t} SELECT * FROM ${t} LIMIT 1`,
  (t: string) => `UPDATE ${t} SET id = id`,
  (t: string) => `DELETE FROM ${t} WHERE id = 1`,
  (t: string) => `TRUNCATE ${t}`,
  (t: string) => `MERGE INTO ${t} d USING ${t} s ON d.id = s.id WHEN MATCHED THEN DELETE`,
  (t: string) => `SELECT * FROM ${t} FOR UPDATE`,
  (t: string) => `SELECT * FROM ${t} FOR KEY SHARE NOWAIT`,
  (t: string) => `SELECT * INTO tmp_${t.replace(/\W/g, '_')} FROM ${t}`,
  (t: string) => `LOCK TABLE ${t}`,
  (t: string) => `COPY ${t} FROM STDIN`,
  (t: string) => `ALTER TABLE ${t} ADD COLUMN x int`,
  (t: string) => `CREATE INDEX ON ${t} (id)`,
  (t: string) => `DROP TABLE ${t}`,
  (t: string) => `CREATE TEMP TABLE tmp AS SELECT * FROM ${t}`,
  (t: string) => `GRANT ALL ON ${t} TO PUBLIC`,
  (t: string) => `ALTER TABLE ${t} OWNER TO postgres`,
  (t: string) => `VACUUM ${t}`,
  (t: string) => `ANALYZE ${t}`,
  (t: string) => `COMMENT ON TABLE ${t} IS 'x'`,
];
const WRAPPERS = [
  (s: string) => s,
  (s: string) => `EXPLAIN ANALYZE ${s}`,
  (s: string) => `EXPLAIN ${s}`,
  (s: string) => `WITH w AS (${s} RETURNING 1) SELECT * FROM w`,
  (s: string) => `PREPARE pw AS ${s}`,
  (s: string) => `SELECT 1; ${s}`,
  (s: string) => `${s}; SELECT 1`,
  (s: string) => `DECLARE cw CURSOR FOR ${s}`,
  (s: string) => `COPY (${s}) TO STDOUT`,
  (s: string) => `/* a comment */ ${s} -- trailing`,
];

function* writes(): Generator<string> {
  for (const t of TABLES) for (const w of WRITES) for (const wrap of WRAPPERS) yield wrap(w(t));
  yield* [
    'DO $$ BEGIN PERFORM 1; END $$', 'CALL nothing()', "NOTIFY ch, 'x'", 'CHECKPOINT', 'SET ROLE postgres', 'RESET ROLE', 'SET SESSION AUTHORIZATION postgres',
    "ALTER ROLE postgres PASSWORD 'x'", 'CREATE ROLE evil', 'REFRESH MATERIALIZED VIEW monthly', 'CREATE TABLE t (a int)', "SELECT set_config('role', 'postgres', false)",
    'CLUSTER sales USING sales_pkey', 'REINDEX TABLE sales', "SELECT setval('counter', 10)", "PREPARE TRANSACTION 'x'", "SECURITY LABEL ON TABLE sales IS 'x'",
  ];
}

/** Sample argument values per type name; other types get a typed NULL. */
const SAMPLES: Readonly<Record<string, string>> = {
  int2: '1::int2', int4: '1', int8: '1::int8', numeric: '1.5', float4: '1.5::float4', float8: '1.5', oid: '1::oid', text: "'a'", varchar: "'a'::varchar", name: "'a'::name",
  bpchar: "'a'::bpchar", char: "'a'::\"char\"", bool: 'true', date: 'current_date', timestamp: 'localtimestamp', timestamptz: 'now()', interval: "'1 day'::interval",
  time: 'localtime', timetz: 'current_time', json: "'{\"a\":1}'::json", jsonb: "'{\"a\":[1,2]}'::jsonb", bytea: "'\\x0102'::bytea", regclass: "'sales'::regclass",
  regtype: "'int4'::regtype", regproc: "'lower'::regproc", regprocedure: "'lower(text)'::regprocedure", regnamespace: "'public'::regnamespace", regrole: "'postgres'::regrole",
  uuid: "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", inet: "'127.0.0.1'::inet", cidr: "'10.0.0.0/8'::cidr", anyelement: '1', anyarray: 'ARRAY[1,2]', _int4: 'ARRAY[1,2]',
  _text: "ARRAY['a','b']", anycompatible: '1', anycompatiblearray: 'ARRAY[1]', anynonarray: '1', xml: "'<a/>'::xml", tsvector: "'a b'::tsvector", tsquery: "'a'::tsquery",
  point: "'(1,1)'::point", int4range: "'[1,3)'::int4range", anyrange: "'[1,3)'::int4range", anymultirange: "'{[1,3)}'::int4multirange", macaddr: "'08:00:2b:01:02:03'::macaddr",
};

export interface FunctionSignature {
  name: string;
  kind: string;
  argTypes: string[];
}

export function* functionCalls(signatures: readonly FunctionSignature[]): Generator<string> {
  for (const f of signatures) {
    const args = f.argTypes.map((t) => SAMPLES[t] ?? `NULL::${t === 'internal' || t.startsWith('pg_') ? 'text' : `pg_catalog.${JSON.stringify(t)}`}`);
    const call = `${JSON.stringify(f.name)}(${args.join(', ')})`;
    if (f.kind === 'w') yield `SELECT ${call} OVER () FROM sales`;
    else yield `SELECT ${call}`;
    yield `SELECT pg_catalog.${call}${f.kind === 'w' ? ' OVER ()' : ''} FROM sales LIMIT 1`;
  }
}

/** Every statement of the SQL files PostgreSQL installs (system views, information_schema, extensions). */
export function* shippedSql(): Generator<{ file: string; sql: string }> {
  const share = execFileSync('pg_config', ['--sharedir'], { encoding: 'utf8' }).trim();
  const files = [
    ...readdirSync(share).filter((f) => f.endsWith('.sql')).map((f) => join(share, f)),
    ...readdirSync(join(share, 'extension')).filter((f) => f.endsWith('.sql')).map((f) => join(share, 'extension', f)),
  ];
  for (const file of files) {
    // psql meta-commands (\echo) are not SQL: drop those lines as psql would consume them.
    const text = readFileSync(file, 'utf8').split('\n').filter((l) => !l.startsWith('\\')).join('\n');
    let stmts: Array<{ stmt_location?: number; stmt_len?: number }>;
    try {
      stmts = (parseSync(text) as { stmts?: Array<{ stmt_location?: number; stmt_len?: number }> }).stmts ?? [];
    } catch {
      yield { file, sql: text };
      continue;
    }
    const bytes = Buffer.from(text, 'utf8');
    for (const s of stmts) {
      const from = s.stmt_location ?? 0;
      const to = s.stmt_len ? from + s.stmt_len : bytes.length;
      yield { file, sql: bytes.subarray(from, to).toString('utf8').trim() };
    }
  }
}

export function generatedStatements(): string[] {
  return [...reads(), ...writes()];
}
