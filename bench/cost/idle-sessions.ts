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
  /**
   * Readings set aside: their RSS grew less than their own JS heap did, which only happens
   * when the process returned memory it held before the sessions (the reading then measures
   * that, not the sessions). Each was taken again on another fresh process.
   */
  discarded?: number[] | undefined;
}

/**
 * A reading can stand only if the RSS grew at least as much as the JS heap inside it did
 * (the heap is resident): one fresh gateway here read -12.3 KiB per session while its heap
 * grew by 13.4.
 */
export function plausible(r: IdleSessionsResult): boolean {
  return r.heapKibPerSession === undefined || r.kibPerSession >= r.heapKibPerSession;
}

/**
 * The same measure on `count` fresh processes; the reading with the median per-session RSS
 * is kept, with every reading beside it. On this machine one fresh gateway read 6 to 25 KiB
 * per session for the same code (its RSS before the sessions moved between 125 and 154 MiB)
 * while the JS heap's share stayed within 0.2 KiB: a single reading cannot carry a target.
 */
export async function medianOfFresh(count: number, measureOnFresh: () => Promise<IdleSessionsResult>): Promise<IdleSessionsResult> {
  const results: IdleSessionsResult[] = [];
  const discarded: IdleSessionsResult[] = [];
  // An implausible reading is taken again on another fresh process, up to `count` more.
  for (let attempt = 0; results.length < count && attempt < 2 * count; attempt++) {
    const r = await measureOnFresh();
    (plausible(r) ? results : discarded).push(r);
  }
  if (results.length === 0) throw new Error(`idle sessions: no plausible reading in ${discarded.length} fresh processes (per session ${discarded.map((r) => `${r.kibPerSession} KiB RSS against ${r.heapKibPerSession} KiB of heap`).join(', ')})`);
  const sorted = [...results].sort((a, b) => a.kibPerSession - b.kibPerSession);
  return {
    ...sorted[Math.floor(sorted.length / 2)]!,
    readings: results.map((r) => r.kibPerSession),
    ...(discarded.length > 0 ? { discarded: discarded.map((r) => r.kibPerSession) } : {}),
  };
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

/**
 * The RSS once it stops moving after a collection: V8 and the allocator give pages back for
 * a while after a full GC, and a reading taken while they do credits the next phase with it.
 * Two readings 250 ms apart within 256 KiB of each other, or the last after 5 s.
 */
async function settledRss(proxy: { rssBytes(): number }): Promise<number> {
  let last = proxy.rssBytes();
  for (let waited = 0; waited < 5000; waited += 250) {
    await sleep(250);
    const now = proxy.rssBytes();
    if (Math.abs(now - last) < 256 * 1024) return now;
    last = now;
  }
  return last;
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
  const before = await settledRss(proxy);
  const open = await openSessions(target, sessions, 16);
  try {
    await sleep(1000);
    const heapAfter = (await proxy.gc?.())?.heapUsed;
    const after = await settledRss(proxy);
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
