/**
 * airlock's own tables, versioned. Every replica runs the missing migrations at start in
 * one transaction under an advisory lock, so two replicas starting together neither race
 * nor apply a step twice; a database migrated by a newer airlock is refused.
 */
import type { Sql } from 'postgres';

interface Migration {
  readonly version: number;
  readonly name: string;
  /** DDL; `$S` stands for the quoted schema name. */
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'grants, change feed, shared values, plugin state, failure counters',
    sql: `
      -- One row: the revision counter. Its row lock is held from the increment to the
      -- commit, so revisions commit in order and without gaps (a sequence would hand out
      -- numbers whose transactions may commit out of order, and a reader could skip one).
      CREATE TABLE $S.meta (id boolean PRIMARY KEY DEFAULT true CHECK (id), revision bigint NOT NULL);
      INSERT INTO $S.meta (id, revision) VALUES (true, 0);

      CREATE TABLE $S.grants (
        id text PRIMARY KEY,
        status text NOT NULL,
        -- When a live grant ends by itself (expiresAt, or pendingUntil while pending).
        deadline timestamptz,
        record jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX grants_due ON $S.grants (deadline) WHERE status IN ('active', 'pending');

      CREATE TABLE $S.changes (
        revision bigint PRIMARY KEY,
        kind text NOT NULL,
        key text NOT NULL,
        origin text NOT NULL,
        change text NOT NULL,
        payload jsonb,
        at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX changes_at ON $S.changes (at);

      CREATE TABLE $S.shared_values (
        name text PRIMARY KEY,
        value text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE $S.state (
        namespace text NOT NULL,
        key text NOT NULL,
        value jsonb NOT NULL,
        expires_at bigint,
        PRIMARY KEY (namespace, key)
      );

      CREATE TABLE $S.failures (
        source text PRIMARY KEY,
        count integer NOT NULL,
        window_start bigint NOT NULL
      );
    `,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Advisory lock class for airlock's migrations (the second key is the schema's hash). */
const MIGRATION_LOCK = 0x6169726c; // 'airl'

export async function migrate(sql: Sql, schema: string): Promise<{ applied: number[] }> {
  return await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK}::int4, hashtext(${schema}))`;
    const [exists] = await tx`select 1 as one from pg_namespace where nspname = ${schema}`;
    // Only when missing: CREATE SCHEMA needs a privilege an operator may not grant at runtime.
    if (!exists) await tx`create schema ${tx(schema)}`;
    await tx`create table if not exists ${tx(schema)}.migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())`;
    const done = new Set((await tx`select version from ${tx(schema)}.migrations`).map((r) => Number(r.version)));
    const newest = Math.max(0, ...done);
    if (newest > LATEST_VERSION) {
      throw new Error(`store schema "${schema}" is at version ${newest}, newer than this airlock understands (${LATEST_VERSION}): upgrade airlock`);
    }
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql.replaceAll('$S', quoteIdent(schema)));
      await tx`insert into ${tx(schema)}.migrations (version, name) values (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
    return { applied };
  });
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
