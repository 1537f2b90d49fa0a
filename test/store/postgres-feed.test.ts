/**
 * Change propagation on a real PostgreSQL 15: NOTIFY wakes other replicas, a killed LISTEN
 * connection reconnects and catches up, the slow poll catches a change nobody announced,
 * and a pruned history becomes a reset with the whole view.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import type { PostgresSharedStore } from '../../core/store/postgres/store.ts';
import { ChangeLog, makeGrant, waitFor } from './fixtures.ts';
import { freshSchema, pgStore } from './pg-backend.ts';

let cluster: PostgresCluster;
before(async () => {
  cluster = await startPostgresCluster();
});
after(async () => {
  await cluster?.stop();
});

/** A (writer) and B (reader whose poll is set to `bPollMs`), opened and listening. */
async function pair(bPollMs: number): Promise<{ schema: string; a: PostgresSharedStore; b: PostgresSharedStore; bLog: ChangeLog; close: () => Promise<void> }> {
  const schema = freshSchema();
  const a = pgStore(cluster, schema, 'A');
  const b = pgStore(cluster, schema, 'B', { pollMs: bPollMs });
  const bLog = new ChangeLog();
  await a.open();
  await b.open({ onChange: bLog.onChange });
  await waitFor('B listening', () => b.health().connected);
  await waitFor('B LISTEN backend visible', () => listenPid(schema, 'B'));
  return {
    schema, a, b, bLog,
    close: async () => {
      await a.close();
      await b.close();
      await cluster.sql(`drop schema if exists ${schema} cascade`);
    },
  };
}

async function listenPid(_schema: string, replica: string): Promise<number | undefined> {
  const out = (await cluster.sql(`select pid from pg_stat_activity where application_name = 'airlock-listen:${replica}' and query ilike 'listen%'`)).trim();
  return out ? Number(out.split('\n')[0]) : undefined;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

test('NOTIFY delivers a change to another replica (its poll is a minute away, so only the notification can)', async (t) => {
  const p = await pair(60_000);
  try {
    const latencies: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const g = makeGrant();
      ids.push(g.id);
      const started = performance.now();
      await p.a.createGrant(g);
      await waitFor(`B hears of grant ${i}`, () => p.bLog.grantChanges(g.id).length === 1, 5_000);
      latencies.push(performance.now() - started);
    }
    const sorted = [...latencies].sort((x, y) => x - y);
    t.diagnostic(`create on A → delivered on B over 30 changes: p50 ${percentile(sorted, 50).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`);
    const revoke = await p.a.transition(ids[0]!, { kind: 'revoke', by: 'local:admin', at: Date.now() });
    assert.ok(revoke.won);
    await waitFor('B hears of the revocation', () => p.bLog.changes.some((c) => c.kind === 'grant' && c.change === 'revoke' && c.origin === 'A'), 5_000);
    assert.deepEqual(p.bLog.revisions(), Array.from({ length: 31 }, (_, i) => i + 1));
  } finally {
    await p.close();
  }
});

test('a notification lost with a killed LISTEN connection is caught up when the listener reconnects', async () => {
  const p = await pair(60_000);
  try {
    const before = await p.a.createGrant(makeGrant());
    await waitFor('B at the first revision', () => p.bLog.revisions().at(-1) === before);
    const oldPid = (await listenPid(p.schema, 'B'))!;
    const lost = makeGrant();
    // Kill B's listener, then commit at once: B is not listening when the NOTIFY goes out.
    assert.equal(await cluster.sql(`select pg_terminate_backend(${oldPid})`), 't\n');
    await p.a.createGrant(lost);
    await waitFor('B catches up the change it was not notified of', () => p.bLog.grantChanges(lost.id).length === 1, 10_000);
    const newPid = await waitFor('a new LISTEN backend for B', async () => {
      const pid = await listenPid(p.schema, 'B');
      return pid !== undefined && pid !== oldPid ? pid : undefined;
    });
    assert.notEqual(newPid, oldPid);
    assert.equal(p.bLog.grantChanges(lost.id).length, 1, 'delivered once');
    // And the new listener is a working one.
    const after_ = makeGrant();
    await p.a.createGrant(after_);
    await waitFor('B notified through the new listener', () => p.bLog.grantChanges(after_.id).length === 1, 5_000);
    assert.deepEqual(p.bLog.revisions(), [1, 2, 3]);
  } finally {
    await p.close();
  }
});

test('the slow poll delivers a change whose notification never came, with the listener still up', async () => {
  const p = await pair(300);
  try {
    const pid = await listenPid(p.schema, 'B');
    // A writer whose NOTIFY was lost: the change row is committed, nobody is woken.
    await cluster.sql(`
      with r as (update ${p.schema}.meta set revision = revision + 1 returning revision)
      insert into ${p.schema}.changes (revision, kind, key, origin, change, payload)
      select revision, 'state', 'ssm-commands/cmd-9', 'elsewhere', 'put', '{"grant":"AG9"}'::jsonb from r`);
    const change = await waitFor('B polls the change', () => p.bLog.changes.find((c) => c.kind === 'state'), 10_000);
    assert.deepEqual(change, { kind: 'state', revision: 1, origin: 'elsewhere', namespace: 'ssm-commands', key: 'cmd-9', value: { grant: 'AG9' } });
    assert.equal(await listenPid(p.schema, 'B'), pid, 'no reconnect was involved');
  } finally {
    await p.close();
  }
});

test('a history pruned behind a replica becomes a reset carrying the whole current view', async () => {
  const p = await pair(300);
  try {
    const kept = makeGrant();
    await p.a.createGrant(kept);
    await waitFor('B at revision 1', () => p.bLog.revisions().at(-1) === 1);
    const unseen = makeGrant();
    // Two changes committed and pruned before B could read them (no NOTIFY either).
    await cluster.sql(`begin;
      insert into ${p.schema}.grants (id, status, deadline, record) values ('${unseen.id}', 'active', now() + interval '1 hour', '${JSON.stringify(unseen)}'::jsonb);
      update ${p.schema}.meta set revision = revision + 2;
      commit;`);
    const reset = await waitFor('B resets', () => p.bLog.changes.find((c) => c.kind === 'reset'), 10_000);
    assert.ok(reset.kind === 'reset');
    assert.equal(reset.revision, 3);
    assert.deepEqual(new Set(reset.grants.map((g) => g.id)), new Set([kept.id, unseen.id]));
    const next = makeGrant();
    await p.a.createGrant(next);
    await waitFor('B continues after the reset', () => p.bLog.grantChanges(next.id).length === 1, 5_000);
    assert.deepEqual(p.bLog.revisions(), [1, 3, 4]);
  } finally {
    await p.close();
  }
});
