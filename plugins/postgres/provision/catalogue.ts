/**
 * Resolve a grant's tables and patterns against the database's catalogue at activation:
 * `schema.*` becomes every table, view, materialized view and foreign table of the schema
 * then; a named table must exist. Names travel as bound parameters only.
 */
import type { TransactionSql as Sql } from 'postgres';
import type { TableName } from './table-names.ts';

export interface ResolvedTables {
  /** In catalogue order; each a relation that exists now. */
  readonly tables: ReadonlyArray<{ schema: string; table: string }>;
  /** Sequences owned by those tables (serial / identity columns), for INSERT. */
  readonly sequences: ReadonlyArray<{ schema: string; sequence: string }>;
  readonly schemas: readonly string[];
}

export class ResolveError extends Error {}

export async function resolveTables(sql: Sql, names: readonly TableName[]): Promise<ResolvedTables> {
  const exact = names.filter((n) => n.table !== '*');
  const wildSchemas = [...new Set(names.filter((n) => n.table === '*').map((n) => n.schema))];
  const schemaRows = await sql<{ nspname: string }[]>`select nspname from pg_namespace where nspname = any(${wildSchemas}::text[])`;
  const missingSchemas = wildSchemas.filter((s) => !schemaRows.some((r) => r.nspname === s));
  if (missingSchemas.length > 0) throw new ResolveError(`schema ${missingSchemas.join(', ')} does not exist`);

  const rows = await sql<{ oid: number; nspname: string; relname: string }[]>`
    select c.oid::int8 as oid, n.nspname, c.relname
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p', 'v', 'm', 'f')
       and (n.nspname = any(${wildSchemas}::text[])
            or (n.nspname, c.relname) in (select * from unnest(${exact.map((e) => e.schema)}::text[], ${exact.map((e) => e.table)}::text[])))
     order by n.nspname, c.relname`;
  const missing = exact.filter((e) => !rows.some((r) => r.nspname === e.schema && r.relname === e.table));
  if (missing.length > 0) throw new ResolveError(`table ${missing.map((m) => `${m.schema}.${m.table}`).join(', ')} does not exist`);

  const oids = rows.map((r) => String(r.oid));
  const seqs = await sql<{ nspname: string; relname: string }[]>`
    select distinct n.nspname, s.relname
      from pg_depend d join pg_class s on s.oid = d.objid and s.relkind = 'S' join pg_namespace n on n.oid = s.relnamespace
     where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
       and d.refobjid = any(${oids}::oid[])
     order by 1, 2`;
  const tables = rows.map((r) => ({ schema: r.nspname, table: r.relname }));
  return {
    tables,
    sequences: seqs.map((s) => ({ schema: s.nspname, sequence: s.relname })),
    schemas: [...new Set([...tables.map((t) => t.schema), ...wildSchemas])],
  };
}
