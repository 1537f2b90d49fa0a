/**
 * The embedded PostgreSQL of `airlock dev`, with the machine's binaries and with the npm-shipped
 * ones (the path a fresh machine without PostgreSQL takes): seeded reporting schema, agent_ro
 * can read but not write, agent_rw can write.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../dev/postgres.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-devpg-test-'));
const running: EmbeddedPostgres[] = [];
after(async () => {
  for (const pg of running) await pg.stop();
  rmSync(dir, { recursive: true, force: true });
});

for (const binaries of ['system', 'npm'] as const) {
  test(`embedded PostgreSQL from ${binaries} binaries: seeded, read-only and read-write roles`, async () => {
    const pg = await startEmbeddedPostgres({ dir: join(dir, binaries), binaries });
    running.push(pg);
    assert.equal(pg.binaries, binaries);
    assert.equal(pg.database, 'reporting');
    const ro = postgres({ host: pg.host, port: pg.port, user: 'agent_ro', pass: pg.users.agent_ro.password, database: pg.database, max: 1, onnotice: () => {} });
    const rw = postgres({ host: pg.host, port: pg.port, user: 'agent_rw', pass: pg.users.agent_rw.password, database: pg.database, max: 1, onnotice: () => {} });
    try {
      const [counts] = await ro`select (select count(*)::int from customers) as customers, (select count(*)::int from orders) as orders, (select count(*)::int from monthly_revenue) as months`;
      assert.deepEqual({ ...counts }, { customers: 6, orders: 120, months: 12 });
      const regions = await ro`select region, sum(amount) from sales group by region order by region`;
      assert.deepEqual(regions.map((r) => r.region), ['east', 'north', 'south', 'west']);
      const denied = await ro`insert into customers (name, country, created_at) values ('x', 'US', now())`.then(() => 'ok', (e: { code?: string }) => e.code);
      assert.equal(denied, '42501');
      const [row] = await rw`insert into customers (name, country, created_at) values ('Dev Co', 'NL', now()) returning id`;
      assert.ok(Number(row!.id) > 6);
    } finally {
      await ro.end();
      await rw.end();
    }
    await pg.stop();
    const after = postgres({ host: pg.host, port: pg.port, user: 'agent_ro', pass: pg.users.agent_ro.password, database: pg.database, max: 1, connect_timeout: 2 });
    const gone = await after`select 1`.then(() => 'still up', (e: { code?: string }) => e.code);
    await after.end();
    assert.equal(gone, 'ECONNREFUSED');
  });
}
