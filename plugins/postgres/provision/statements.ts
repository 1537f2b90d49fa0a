/**
 * The DDL of a grant role, written by the server itself: every identifier goes through
 * `format('%I')` and every literal through `format('%L')` (quote_ident / quote_literal), with
 * names and values bound as parameters. Privilege keywords come only from the config's fixed
 * list. What comes back is run as one transaction.
 */
import type { TransactionSql as Sql } from 'postgres';
import { PRIVILEGES, type Privilege } from '../config.ts';
import type { ResolvedTables } from './catalogue.ts';

export interface RoleSpec {
  readonly role: string;
  readonly connectionLimit: number;
  /** ISO timestamp: the grant's expiry. */
  readonly validUntil: string;
  /** SCRAM verifier (password login) or undefined (RDS IAM: membership of rds_iam instead). */
  readonly passwordVerifier: string | undefined;
  readonly marker: string;
}

function privilegeList(privileges: readonly Privilege[]): string {
  for (const p of privileges) if (!PRIVILEGES.includes(p)) throw new Error(`unknown privilege ${p}`);
  return privileges.join(', ');
}

/** CREATE ROLE (or, when it exists after a restart, ALTER ROLE to the same attributes). */
export async function roleStatements(sql: Sql, spec: RoleSpec, exists: boolean): Promise<string[]> {
  // ALTER may not name the superuser-only attributes; a role we created has them off already.
  const attributes = exists ? 'LOGIN NOINHERIT NOCREATEDB NOCREATEROLE' : 'LOGIN NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS';
  const verifier = spec.passwordVerifier ?? null;
  const [row] = await sql<{ stmts: string[] }[]>`
    select array[
      format(${`${exists ? 'ALTER' : 'CREATE'} ROLE %I WITH ${attributes} CONNECTION LIMIT %s VALID UNTIL %L`}, ${spec.role}::text, ${spec.connectionLimit}::int, ${spec.validUntil}::text)
        || coalesce(format(' PASSWORD %L', ${verifier}::text), ' PASSWORD NULL'),
      format('COMMENT ON ROLE %I IS %L', ${spec.role}::text, ${spec.marker}::text)
    ] || case when ${verifier}::text is null then array[format('GRANT rds_iam TO %I', ${spec.role}::text)] else array[]::text[] end as stmts`;
  return row!.stmts;
}

export async function privilegeStatements(sql: Sql, role: string, privileges: readonly Privilege[], resolved: ResolvedTables): Promise<string[]> {
  const list = privilegeList(privileges);
  const withSequences = privileges.includes('INSERT');
  const [row] = await sql<{ stmts: string[] }[]>`
    select array[format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), ${role}::text)]
      || array(select format('GRANT USAGE ON SCHEMA %I TO %I', s, ${role}::text) from unnest(${resolved.schemas as string[]}::text[]) s)
      || array(select format(${`GRANT ${list} ON TABLE %I.%I TO %I`}, t.s, t.n, ${role}::text) from unnest(${resolved.tables.map((t) => t.schema)}::text[], ${resolved.tables.map((t) => t.table)}::text[]) t(s, n))
      || array(select format('GRANT USAGE ON SEQUENCE %I.%I TO %I', q.s, q.n, ${role}::text) from unnest(${withSequences ? resolved.sequences.map((q) => q.schema) : []}::text[], ${withSequences ? resolved.sequences.map((q) => q.sequence) : []}::text[]) q(s, n))
      as stmts`;
  return row!.stmts;
}

/** Before a drop: no new logins, and the admin may act for the role (PostgreSQL 15 needs membership for DROP OWNED and to signal its backends). */
export async function prepareDropStatements(sql: Sql, role: string): Promise<string[]> {
  const [row] = await sql<{ stmts: string[] }[]>`
    select array[format('ALTER ROLE %I NOLOGIN', ${role}::text)]
      || case when (select rolsuper from pg_roles where rolname = current_user) then array[]::text[]
              else array[format('GRANT %I TO %I', ${role}::text, current_user)] end as stmts`;
  return row!.stmts;
}

export async function dropStatements(sql: Sql, role: string): Promise<string[]> {
  const [row] = await sql<{ stmts: string[] }[]>`
    select array[format('DROP OWNED BY %I CASCADE', ${role}::text), format('DROP ROLE %I', ${role}::text)] as stmts`;
  return row!.stmts;
}
