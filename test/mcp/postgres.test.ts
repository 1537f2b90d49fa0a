/**
 * MCP end to end against a real PostgreSQL: the official clients of both SDK lines list the
 * tools, request a secretless grant and query through it; a write under a read grant fails
 * and writes nothing; another agent cannot use the grant; a pending grant is approved
 * through the control API while grant_status waits; a revocation cuts a running pg_sleep;
 * refused requests get the right HTTP status; nothing returned or logged holds a secret.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, fetch as undiciFetch } from 'undici';
import { startCluster, gatewayYaml, ROLE_PASSWORD, AGENT, AGENT_NAME } from '../postgres/fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';
import { CLIENT_LINES, connectClient, type McpTestClient } from './clients.ts';

const OTHER = 'other-bot';
const EXPECTED_TOOLS = ['whoami', 'list_resources', 'request_grant', 'grant_status', 'list_grants', 'revoke_grant', 'query_postgres'];

function yaml(cluster: PostgresCluster): string {
  const base = gatewayYaml(cluster);
  const policies = `policies:
  - { agents: ['${AGENT}'], resources: [reporting], access: [read], maxTtl: 15m, approval: none }
  - { agents: ['${AGENT}'], resources: [reporting], access: [write], maxTtl: 15m, approval: required }
  - { agents: ['local:${OTHER}'], resources: [reporting], access: [read], maxTtl: 15m, approval: none }
`;
  return base.replace(/policies:\n(  - .*\n)+/, policies);
}

describe('MCP with PostgreSQL', () => {
  let cluster: PostgresCluster;
  let gw: TestGateway;
  let token: string;
  let otherToken: string;
  const clients: McpTestClient[] = [];
  const logLines: string[] = [];

  before(async () => {
    cluster = await startCluster();
    // Capture every line the gateway logs (debug level) to look for secrets afterwards.
    gw = await startTestGateway({ yaml: yaml(cluster), env: { AIRLOCK_TEST_PG_PW: ROLE_PASSWORD }, logLevel: 'debug', logStream: { write: (line) => void logLines.push(line) } });
    token = await gw.tokenFor(AGENT_NAME);
    otherToken = await gw.tokenFor(OTHER);
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await gw?.close();
    await cluster?.stop();
  });

  const connect = async (line: (typeof CLIENT_LINES)[number], t = token) => {
    const c = await connectClient(line, `${gw.url}/mcp`, t);
    clients.push(c);
    return c;
  };

  for (const line of CLIENT_LINES) {
    test(`${line}: tools listed, a secretless grant requested and used for a query`, async () => {
      const c = await connect(line);
      const names = (await c.listTools()).map((t) => t.name);
      for (const name of EXPECTED_TOOLS) assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
      for (const admin of ['approve_grant', 'deny_grant']) assert.ok(!names.includes(admin), 'no admin tools');
      const query = (await c.listTools()).find((t) => t.name === 'query_postgres');
      assert.match(String(query?.description), /may contain text that looks like instructions/);
      assert.ok(JSON.stringify(query?.inputSchema).includes('grant_id'));

      const me = await c.call('whoami', {});
      assert.equal(me.structured.agent, AGENT);
      const listed = await c.call('list_resources', {});
      assert.deepEqual(listed.structured.resources, [{ resource: 'reporting', type: 'postgres', access: [{ access: 'read', maxTtl: '15m', approval: 'none' }, { access: 'write', maxTtl: '15m', approval: 'required' }] }]);

      const issued = await c.call('request_grant', { resource: 'reporting', access: 'read', ttl: '5m', task: `mcp test ${line}` });
      assert.equal(issued.isError, false, issued.text);
      const grant = issued.structured.grant as Record<string, unknown>;
      assert.equal(grant.status, 'active');
      assert.equal(grant.secret, undefined);
      assert.equal(grant.connect, undefined);
      const stored = gw.gateway.grants.record(String(grant.id));
      assert.deepEqual(stored?.verifiers, {}, 'a secretless grant stores no verifier');

      const r = await c.call('query_postgres', { grant_id: grant.id, sql: 'select month, amount from revenue where id <= $1 order by id', params: [3] });
      assert.equal(r.isError, false, r.text);
      assert.deepEqual(r.structured.columns, [{ name: 'month', type: 'text' }, { name: 'amount', type: 'numeric' }]);
      assert.deepEqual(r.structured.rows, [['m1', '10'], ['m2', '20'], ['m3', '30']]);
      assert.equal((r.structured.caps as Record<string, unknown>).truncated, false);
      assert.equal((r.structured.provenance as Record<string, unknown>).source, 'resource');
      assert.match(r.text, /<resource-data>/);

      const capped = await c.call('query_postgres', { grant_id: grant.id, sql: 'select id from revenue order by id', max_rows: 5 });
      assert.equal((capped.structured.rows as unknown[]).length, 5);
      assert.deepEqual(capped.structured.caps, { maxRows: 5, maxBytes: 256 * 1024, returnedRows: 5, totalRows: 50, truncated: true, cutBy: 'max_rows' });

      const records = gw.auditRecords().filter((x) => x.grant === grant.id);
      const types = records.map((x) => x.type);
      for (const t of ['grant.issued', 'session.opened', 'pg.query', 'pg.result', 'session.closed', 'mcp.call']) assert.ok(types.includes(t), `${t} in ${types.join(',')}`);
      const q = records.find((x) => x.type === 'pg.query');
      assert.equal(q?.data?.sql, 'select month, amount from revenue where id <= $1 order by id');
      const call = records.find((x) => x.type === 'mcp.call' && x.data?.tool === 'query_postgres');
      assert.equal(call?.outcome, 'ok');
      assert.equal(typeof call?.data?.ms, 'number');
      assert.deepEqual((call?.data?.arguments as Record<string, unknown>).params, [3]);
    });
  }

  test('the client lines negotiate the revisions they speak', async () => {
    const versions = await Promise.all(CLIENT_LINES.map(async (line) => (await connect(line)).protocolVersion()));
    assert.equal(versions[2], '2026-07-28');
    assert.ok(versions[0] && versions[0] >= '2025-06-18' && versions[0] < '2026-07-28', String(versions[0]));
    // The oldest revision of the range, by hand: initialize with 2025-06-18.
    const res = await fetch(`${gw.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /"protocolVersion":"2025-06-18"/);
  });

  test('a write under a read grant is an error and nothing is written', async () => {
    const c = await connect('client-2.x-2026-07-28');
    const g = (await c.call('request_grant', { resource: 'reporting', access: 'read', ttl: '5m', task: 'read only' })).structured.grant as { id: string };
    const r = await c.call('query_postgres', { grant_id: g.id, sql: "insert into notes (body) values ('from mcp')" });
    assert.equal(r.isError, true);
    assert.equal((r.structured.error as Record<string, unknown>).code, '42501');
    const count = await cluster.sql("select count(*) from notes where body = 'from mcp'", 'reporting');
    assert.match(count, /\b0\b/);
  });

  test('the guardrail applies as on the wire: a role change is refused before anything runs, and recorded', async () => {
    const c = await connect('sdk-1.x');
    const g = (await c.call('request_grant', { resource: 'reporting', access: 'read', ttl: '5m', task: 'try a password change' })).structured.grant as { id: string };
    const before = await cluster.sql("select rolpassword from pg_authid where rolname = 'agent_ro'");
    const r = await c.call('query_postgres', { grant_id: g.id, sql: "alter role agent_ro password 'mine-now'" });
    assert.equal(r.isError, true);
    assert.equal((r.structured.error as Record<string, unknown>).code, 'FORBIDDEN');
    assert.match(String((r.structured.error as Record<string, unknown>).message), /guardrail/);
    assert.equal(await cluster.sql("select rolpassword from pg_authid where rolname = 'agent_ro'"), before, 'the password is unchanged');
    const denied = gw.auditRecords().find((x) => x.type === 'pg.query' && x.grant === g.id && x.outcome === 'denied');
    assert.ok(denied, 'a denied pg.query record');
    assert.match(String(denied.data?.sql), /alter role agent_ro/);
  });

  test('another agent cannot use the grant, see it or revoke it', async () => {
    const mine = await connect('sdk-1.x');
    const g = (await mine.call('request_grant', { resource: 'reporting', access: 'read', ttl: '5m', task: 'mine' })).structured.grant as { id: string };
    const other = await connect('client-2.x-legacy', otherToken);
    for (const [tool, args] of [['query_postgres', { grant_id: g.id, sql: 'select 1' }], ['grant_status', { grant_id: g.id }], ['revoke_grant', { grant_id: g.id }]] as const) {
      const r = await other.call(tool, args);
      assert.equal(r.isError, true, tool);
      assert.equal((r.structured.error as Record<string, unknown>).code, 'GRANT_NOT_FOUND', tool);
    }
    assert.equal(gw.gateway.grants.publicView(g.id)?.status, 'active');
    const denied = gw.auditRecords().filter((x) => x.type === 'mcp.call' && x.agent === `local:${OTHER}` && x.outcome === 'denied');
    assert.ok(denied.length >= 3);
  });

  test('a pending grant approved through the control API while grant_status waits', async () => {
    const c = await connect('client-2.x-2026-07-28');
    const pending = await c.call('request_grant', { resource: 'reporting', access: 'write', ttl: '5m', task: 'needs approval' });
    const g = pending.structured.grant as { id: string; status: string };
    assert.equal(g.status, 'pending');
    const refused = await c.call('query_postgres', { grant_id: g.id, sql: 'select 1' });
    assert.equal((refused.structured.error as Record<string, unknown>).code, 'GRANT_PENDING');
    const waiting = c.call('grant_status', { grant_id: g.id, wait_seconds: 30 });
    await new Promise((r) => setTimeout(r, 500));
    const approved = await gw.api('POST', `/v1/grants/${g.id}/approve`, await gw.adminToken());
    assert.equal(approved.status, 200);
    const status = await waiting;
    assert.equal((status.structured.grant as Record<string, unknown>).status, 'active');
    const w = await c.call('query_postgres', { grant_id: g.id, sql: "insert into notes (body) values ('approved write') returning id" });
    assert.equal(w.isError, false, w.text);
  });

  test('a revoked grant stops working, including a pg_sleep running at that moment', async () => {
    const c = await connect('sdk-1.x');
    const g = (await c.call('request_grant', { resource: 'reporting', access: 'read', ttl: '5m', task: 'long query' })).structured.grant as { id: string };
    const long = c.call('query_postgres', { grant_id: g.id, sql: 'select pg_sleep(60)' });
    // Wait until the statement runs upstream.
    for (let i = 0; i < 100; i++) {
      if (/\b1\b/.test(await cluster.sql("select count(*) from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'"))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const revoker = await connect('client-2.x-legacy');
    const revoked = await revoker.call('revoke_grant', { grant_id: g.id });
    assert.equal((revoked.structured.grant as Record<string, unknown>).status, 'revoked');
    const r = await long;
    assert.equal(r.isError, true);
    assert.equal((r.structured.error as Record<string, unknown>).code, 'GRANT_REVOKED');
    let left = '';
    for (let i = 0; i < 50; i++) {
      left = await cluster.sql("select count(*) from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'");
      if (/\b0\b/.test(left)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(left, /\b0\b/, 'the statement no longer runs upstream');
    const after = await c.call('query_postgres', { grant_id: g.id, sql: 'select 1' });
    assert.equal((after.structured.error as Record<string, unknown>).code, 'GRANT_REVOKED');
    const closed = gw.auditRecords().find((x) => x.type === 'session.closed' && x.grant === g.id);
    assert.equal(closed?.data?.reason, 'revoked');
  });

  test('unauthenticated, forged-token and foreign-Origin requests are refused; the metadata document is RFC 9728', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const none = await fetch(`${gw.url}/mcp`, { method: 'POST', headers, body });
    assert.equal(none.status, 401);
    const challenge = none.headers.get('www-authenticate') ?? '';
    assert.equal(challenge, `Bearer resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp"`);
    const [h, p] = token.split('.');
    const forged = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
    const bad = await fetch(`${gw.url}/mcp`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${forged}` }, body });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token".*resource_metadata=/);
    const foreign = await fetch(`${gw.url}/mcp`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token}`, origin: 'https://evil.example' }, body });
    assert.equal(foreign.status, 403);
    const own = await fetch(`${gw.url}/mcp`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token}`, origin: new URL(gw.url).origin }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) });
    assert.equal(own.status, 200);
    // On its own connection: the server answers 413 without reading the body, then drops it.
    const lone = new Agent();
    try {
      const big = await undiciFetch(`${gw.url}/mcp`, { dispatcher: lone, method: 'POST', headers: { ...headers, authorization: `Bearer ${token}` }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { pad: 'x'.repeat(2 * 1024 * 1024) } }) });
      assert.equal(big.status, 413);
    } finally {
      await lone.close().catch(() => {});
    }

    const meta = await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(meta.status, 200);
    const doc = (await meta.json()) as Record<string, unknown>;
    // RFC 9728 §2: `resource` is REQUIRED and equals the protected resource's URL.
    assert.equal(doc.resource, `${gw.url}/mcp`);
    assert.ok(Array.isArray(doc.authorization_servers) && doc.authorization_servers.length === 1);
    assert.match(String((doc.authorization_servers as string[])[0]), /^urn:|^https?:/);
    assert.deepEqual(doc.bearer_methods_supported, ['header']);
    const failures = gw.auditRecords().filter((x) => x.type === 'auth.failed' && x.data?.path === '/mcp');
    assert.ok(failures.length >= 2);
  });

  test('failures are limited per address, a token that verifies never is (the control API\'s rule)', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    let last = 0;
    for (let i = 0; i < 120 && last !== 429; i++) last = (await fetch(`${gw.url}/mcp`, { method: 'POST', headers: { ...headers, authorization: 'Bearer not-a-token' }, body })).status;
    assert.equal(last, 429, 'bad tokens from this address are refused past the failure budget');
    const valid = await fetch(`${gw.url}/mcp`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token}` }, body });
    assert.equal(valid.status, 200, 'the agent\'s valid token still works from the same address');
  });

  test('no tool result, audit record or log line holds a secret', async () => {
    const c = await connect('client-2.x-legacy');
    const g = (await c.call('request_grant', { resource: 'reporting', access: 'read', ttl: '5m', task: 'secret check' })).structured.grant as { id: string };
    const r = await c.call('query_postgres', { grant_id: g.id, sql: 'select current_user' });
    assert.deepEqual(r.structured.rows, [['agent_ro']]);
    const everything = [JSON.stringify(r), JSON.stringify(gw.auditRecords()), logLines.join('')].join('\n');
    assert.ok(!everything.includes(ROLE_PASSWORD), 'the database password appears nowhere');
    assert.ok(!everything.includes(token), 'the agent token appears nowhere');
    assert.ok(logLines.length > 0, 'the gateway did log');
  });
});
