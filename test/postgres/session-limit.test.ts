/**
 * `policies[].maxSessions`: the session registry refuses a grant's sessions beyond the
 * policy's limit, and Postgres answers 53300 (too_many_connections), as a server at its
 * connection limit does. Other grants are not affected.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { startCluster, startFixture, grant, type PgFixture } from './fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';

let cluster: PostgresCluster;
let f: PgFixture;

before(async () => {
  cluster = await startCluster();
  f = await startFixture(cluster, { policyExtra: 'maxSessions: 5' });
});
after(async () => {
  await f?.close();
  await cluster?.stop();
});

test('30 concurrent sessions on a maxSessions: 5 grant: 5 succeed, the rest get 53300; another grant is unaffected', async () => {
  const g = await grant(f);
  const clients = Array.from({ length: 30 }, () => postgres(g.url, { max: 1, ssl: 'require', onnotice: () => {}, connect_timeout: 20, idle_timeout: 0 }));
  const other = await grant(f);
  const otherClient = postgres(other.url, { max: 1, ssl: 'require', onnotice: () => {}, connect_timeout: 20 });
  try {
    // Each client holds its connection open after its first query, so the 5 admitted ones stay live.
    const results = await Promise.allSettled(clients.map((sql) => sql`select 1 as one`));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 5, `admitted: ${ok.length}; errors: ${refused.map((r) => String((r.reason as Error).message)).slice(0, 3).join(' | ')}`);
    assert.equal(refused.length, 25);
    for (const r of refused) assert.equal((r.reason as { code?: string }).code, '53300', String((r.reason as Error).message));
    assert.match(String((refused[0]!.reason as Error).message), /maxSessions|live sessions/);

    const [row] = await otherClient`select 2 as two`;
    assert.equal(row?.['two'], 2, 'another grant opens a session while the first is at its limit');
    const violations = f.gw.auditRecords().filter((r) => r.type === 'policy.violation' && r.grant === g.id && r.data?.['rule'] === 'maxSessions');
    assert.equal(violations.length, 25, 'each refused session is recorded');
  } finally {
    await Promise.all([...clients, otherClient].map((sql) => sql.end({ timeout: 5 })));
  }
});
