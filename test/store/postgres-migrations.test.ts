/** airlock's migrations on a real PostgreSQL 15: idempotent, safe with concurrent openers, refuse a newer schema. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { LATEST_VERSION, migrate } from '../../core/store/postgres/migrations.ts';
import { PostgresSharedStore } from '../../core/store/postgres/store.ts';
import { freshSchema, pgStore, storeUrl } from './pg-backend.ts';

let cluster: PostgresCluster;
before(async () => {
  cluster = await startPostgresCluster();
});
after(async () => {
  await cluster?.stop();
});

test('two migrators at once: one applies every step, the other waits and applies none; a rerun applies none', async () => {
  const schema = freshSchema();
  const a = postgres(storeUrl(cluster), { max: 1, onnotice: () => {} });
  const b = postgres(storeUrl(cluster), { max: 1, onnotice: () => {} });
  try {
    const [ra, rb] = await Promise.all([migrate(a, schema), migrate(b, schema)]);
    const applied = [ra.applied, rb.applied].sort((x, y) => y.length - x.length);
    assert.deepEqual(applied, [Array.from({ length: LATEST_VERSION }, (_, i) => i + 1), []]);
    assert.deepEqual((await migrate(a, schema)).applied, []);
    assert.equal(await cluster.sql(`select string_agg(version::text, ',' order by version) from ${schema}.migrations`), `${Array.from({ length: LATEST_VERSION }, (_, i) => i + 1).join(',')}\n`);
    assert.equal(await cluster.sql(`select revision from ${schema}.meta`), '0\n');
  } finally {
    await a.end();
    await b.end();
    await cluster.sql(`drop schema if exists ${schema} cascade`);
  }
});

test('three stores opening at once on an empty database all start, on one schema', async () => {
  const schema = freshSchema();
  const stores = ['a', 'b', 'c'].map((r) => pgStore(cluster, schema, r));
  try {
    const snaps = await Promise.all(stores.map((s) => s.open()));
    assert.deepEqual(snaps.map((s) => s.revision), [0, 0, 0]);
    assert.equal(await cluster.sql(`select count(*) from ${schema}.migrations`), `${LATEST_VERSION}\n`);
    assert.equal(await cluster.sql(`select count(*) from pg_namespace where nspname = '${schema}'`), '1\n');
  } finally {
    for (const s of stores) await s.close();
    await cluster.sql(`drop schema if exists ${schema} cascade`);
  }
});

test('a schema migrated by a newer airlock is refused with a message saying so', async () => {
  const schema = freshSchema();
  const first = pgStore(cluster, schema, 'a');
  await first.open();
  await first.close();
  await cluster.sql(`insert into ${schema}.migrations (version, name) values (999, 'from the future')`);
  const later = pgStore(cluster, schema, 'b');
  try {
    await assert.rejects(later.open(), /store schema "t_[0-9a-f]+" is at version 999, newer than this airlock understands/);
  } finally {
    await later.close();
    await cluster.sql(`drop schema if exists ${schema} cascade`);
  }
});

test('a schema name that is not a plain lower-case identifier is refused before connecting', () => {
  assert.throws(() => new PostgresSharedStore({ url: storeUrl(cluster), schema: 'Airlock"; drop', replicaId: 'a' }), /lower-case letters, digits and _/);
});
