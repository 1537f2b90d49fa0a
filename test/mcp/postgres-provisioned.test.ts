/**
 * MCP with per-grant roles (the recommended default): query_postgres under a provisioned
 * level logs in as the grant's own role, sees only the grant's tables, gets the SELECT-only
 * guardrail of a SELECT-only level, and the role is dropped when the grant is revoked — the
 * same as a psql session of the grant (test/postgres/provisioned.test.ts). Real PostgreSQL 15,
 * the official MCP client.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { eventually, startTestGateway, type TestGateway } from '../harness/gateway.ts';
import { ADMIN_PASSWORD, prepareDatabase, provisionedGatewayYaml } from '../postgres/provision-fixture.ts';
import { connectClient, type McpTestClient } from './clients.ts';

const AGENT_NAME = 'mcp-roles-bot';

let cluster: PostgresCluster;
let gw: TestGateway;
let client: McpTestClient | undefined;

before(async () => {
  cluster = await startPostgresCluster();
  await prepareDatabase(cluster);
  gw = await startTestGateway({ yaml: provisionedGatewayYaml(cluster.port, `local:${AGENT_NAME}`), env: { AIRLOCK_TEST_ADMIN_PW: ADMIN_PASSWORD, AIRLOCK_TEST_PG_PW: 'static levels unused here' } });
  client = await connectClient('client-2.x-2026-07-28', `${gw.url}/mcp`, await gw.tokenFor(AGENT_NAME));
});
after(async () => {
  await client?.close().catch(() => {});
  await gw?.close();
  await cluster?.stop();
});

test('query_postgres under a provisioned level runs as the grant\'s own role, narrowed to its table; revoking drops the role', async () => {
  const c = client!;
  const issued = await c.call('request_grant', { resource: 'reporting', access: 'read', ttl: '5m', task: 'mcp per-grant role', scope: { tables: ['sales'] } });
  assert.equal(issued.isError, false, issued.text);
  const id = String((issued.structured.grant as Record<string, unknown>).id);
  const role = `airlock_${id.toLowerCase()}`;

  const who = await c.call('query_postgres', { grant_id: id, sql: 'select current_user as who, count(*)::int as n from sales' });
  assert.equal(who.isError, false, who.text);
  assert.deepEqual(who.structured.rows, [[role, 12]]);

  const other = await c.call('query_postgres', { grant_id: id, sql: 'select * from customers' });
  assert.equal(other.isError, true);
  assert.match(other.text, /42501: permission denied for table customers/);

  const write = await c.call('query_postgres', { grant_id: id, sql: "insert into sales (month, amount) values ('x', 1)" });
  assert.equal(write.isError, true);
  assert.match(write.text, /airlock guardrail "write"/);
  assert.equal((await cluster.sql("select count(*) from sales where month = 'x'", 'reporting')).trim(), '0');

  const opened = gw.auditRecords().find((r) => r.type === 'session.opened' && r.grant === id);
  assert.equal(opened?.data?.dbUser, role, 'the session record names the role it logged in as');

  const revoked = await c.call('revoke_grant', { grant_id: id });
  assert.equal(revoked.isError, false, revoked.text);
  await eventually(async () => ((await cluster.sql(`select count(*) from pg_roles where rolname = '${role}'`)).trim() === '0' ? true : undefined), 10_000, 'the role dropped');
  const after = await c.call('query_postgres', { grant_id: id, sql: 'select 1' });
  assert.equal(after.isError, true);
});

test('query_postgres streams a large result: the rows past max_rows are counted, not kept', async () => {
  const c = client!;
  const issued = await c.call('request_grant', { resource: 'reporting', access: 'read', ttl: '5m', task: 'mcp large result' });
  assert.equal(issued.isError, false, issued.text);
  const id = String((issued.structured.grant as Record<string, unknown>).id);
  const r = await c.call('query_postgres', { grant_id: id, sql: 'select g as n from generate_series(1, 200000) g', max_rows: 3 });
  assert.equal(r.isError, false, r.text);
  assert.deepEqual(r.structured.rows, [[1], [2], [3]]);
  assert.equal(r.structured.rowCount, 200000);
  assert.deepEqual(r.structured.caps, { maxRows: 3, maxBytes: 256 * 1024, returnedRows: 3, totalRows: 200000, truncated: true, cutBy: 'max_rows' });
  const result = gw.auditRecords().find((x) => x.type === 'pg.result' && x.grant === id);
  assert.equal(result?.data?.rows, 200000, 'the outcome record counts every row the server sent');
});
