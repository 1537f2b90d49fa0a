/**
 * Resident memory per idle Postgres session: open N authenticated sessions (each ran one
 * query, so its relay is live), let them sit, and divide the proxy's RSS growth by N.
 * The baseline is taken after a warm-up round of sessions was opened and closed, and both
 * readings follow a full GC in airlock, so what is counted is what a session keeps.
 */
import postgres from 'postgres';
import { sleep } from '../lib/proc.ts';
import type { PgTarget } from '../pg/pgbench.ts';

export interface IdleSessionsResult {
  sessions: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  kibPerSession: number;
  /**
   * The JS heap's share (V8's heapUsed after a full GC, before and after): what the
   * process's own objects cost, apart from native handles and the heap's spare pages.
   * Absent for a proxy that is not a Node process.
   */
  heapKibPerSession?: number | undefined;
  /**
   * Per-session KiB of every reading when the figure is the median of several, each on a
   * fresh process (`medianOfFresh`): one reading's RSS moves by a third between processes.
   */
  readings?: number[] | undefined;
}

/**
 * The same measure on `count` fresh processes; the reading with the median per-session RSS
 * is kept, with every reading beside it. On this machine one fresh gateway read 6 to 25 KiB
 * per session for the same code (its RSS before the sessions moved between 125 and 154 MiB)
 * while the JS heap's share stayed within 0.2 KiB: a single reading cannot carry a target.
 */
export async function medianOfFresh(count: number, measureOnFresh: () => Promise<IdleSessionsResult>): Promise<IdleSessionsResult> {
  const results: IdleSessionsResult[] = [];
  for (let i = 0; i < count; i++) results.push(await measureOnFresh());
  const sorted = [...results].sort((a, b) => a.kibPerSession - b.kibPerSession);
  return { ...sorted[Math.floor(sorted.length / 2)]!, readings: results.map((r) => r.kibPerSession) };
}

type Sql = postgres.Sql<Record<string, postgres.PostgresType>>;

async function openSessions(target: PgTarget, count: number, concurrency: number): Promise<Sql[]> {
  const open: Sql[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const sql = postgres({
        host: target.host,
        port: target.port,
        user: target.user,
        password: target.password,
        database: target.database,
        ssl: false,
        max: 1,
        idle_timeout: 0,
        max_lifetime: null,
        connect_timeout: 30,
        onnotice: () => {},
      });
      open.push(sql);
      const rows = await sql`select 1 as one`;
      if (rows[0]?.one !== 1) throw new Error('idle sessions: select 1 did not answer 1');
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } catch (e) {
    await closeAll(open).catch(() => {});
    throw new Error(`idle sessions: opening session ${open.length} of ${count} failed: ${(e as Error).message}`);
  }
  return open;
}

async function closeAll(sessions: Sql[]): Promise<void> {
  await Promise.all(sessions.map((s) => s.end({ timeout: 5 })));
}

export async function measureIdleSessions(
  target: PgTarget,
  proxy: { rssBytes(): number; gc?: () => Promise<{ heapUsed: number }> },
  sessions: number,
): Promise<IdleSessionsResult> {
  // Warm-up: code paths compiled, pools and caches at their working size.
  await closeAll(await openSessions(target, 50, 10));
  await sleep(500);
  const heapBefore = (await proxy.gc?.())?.heapUsed;
  await sleep(500);
  const before = proxy.rssBytes();
  const open = await openSessions(target, sessions, 16);
  try {
    await sleep(1000);
    const heapAfter = (await proxy.gc?.())?.heapUsed;
    await sleep(500);
    const after = proxy.rssBytes();
    return {
      sessions,
      rssBeforeMiB: Math.round((before / 1024 ** 2) * 10) / 10,
      rssAfterMiB: Math.round((after / 1024 ** 2) * 10) / 10,
      kibPerSession: Math.round(((after - before) / sessions / 1024) * 10) / 10,
      ...(heapBefore === undefined || heapAfter === undefined ? {} : { heapKibPerSession: Math.round(((heapAfter - heapBefore) / sessions / 1024) * 10) / 10 }),
    };
  } finally {
    await closeAll(open);
  }
}
