/**
 * Backpressure: a client that stops reading a huge result makes airlock stop reading the
 * upstream, so the upstream backend blocks in ClientWrite instead of airlock buffering the
 * result in memory; when that client goes away, the running statement is cancelled upstream.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, startFixture, grant, type PgFixture } from './fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { eventually } from '../harness/gateway.ts';
import { cstr, rawLogin, typed } from './raw-client.ts';

let cluster: PostgresCluster;
let f: PgFixture;
before(async () => {
  cluster = await startCluster();
  f = await startFixture(cluster, { durability: 'buffered', listenerExtra: 'allowPlaintext: true' });
});
after(async () => {
  await f?.close();
  await cluster?.stop();
});

const HUGE = "select repeat('x', 1000) from generate_series(1, 3000000) /* backpressure */";
const upstreamState = async () =>
  (await cluster.sql(`select coalesce(wait_event, state) from pg_stat_activity where query like '%/* backpressure */' and pid <> pg_backend_pid()`)).trim();

test('a client that does not read pauses the upstream; memory stays bounded; leaving cancels the query', async () => {
  const g = await grant(f);
  const sock = await rawLogin(f.host, f.port, g);
  sock.pause(); // the "slow client": reads nothing from here on
  const rssBefore = process.memoryUsage().rss;
  sock.write(typed('Q', cstr(HUGE)));
  // ~3 GB of rows would follow; the backend must end up blocked writing to airlock.
  await eventually(async () => ((await upstreamState()) === 'ClientWrite' ? true : undefined), 15_000, 'upstream backend blocked in ClientWrite');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await upstreamState(), 'ClientWrite', 'still blocked: nothing drains it');
  const growth = process.memoryUsage().rss - rssBefore;
  assert.ok(growth < 64 * 1024 * 1024, `gateway memory grew by ${Math.round(growth / 1048576)} MB`);
  sock.destroy();
  await eventually(async () => ((await upstreamState()) === '' ? true : undefined), 5_000, 'upstream statement gone after the client left');
  const closed = await eventually(() => f.gw.auditRecords().find((r) => r.grant === g.id && r.type === 'session.closed'), 3000, 'session.closed');
  assert.equal(closed.data?.reason, 'client');
});
