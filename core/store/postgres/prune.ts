/**
 * Housekeeping any replica may run (idempotent, safe concurrently): drop change rows older
 * than an hour (a replica further behind gets a `reset`), grants ended more than a day ago
 * (as the file store's compaction does), expired plugin state and stale failure windows.
 */
import type { Sql } from 'postgres';

const KEEP_CHANGES = '1 hour';
const KEEP_ENDED = '1 day';
const KEEP_FAILURE_WINDOW_MS = 3_600_000;

export async function pruneStore(sql: Sql, schema: string, now: number): Promise<void> {
  await sql`delete from ${sql(schema)}.changes where at < now() - ${KEEP_CHANGES}::interval`;
  await sql`delete from ${sql(schema)}.grants where status not in ('active', 'pending') and updated_at < now() - ${KEEP_ENDED}::interval`;
  await sql`delete from ${sql(schema)}.state where expires_at is not null and expires_at <= ${now}::bigint`;
  await sql`delete from ${sql(schema)}.failures where window_start < ${now - KEEP_FAILURE_WINDOW_MS}::bigint`;
}
