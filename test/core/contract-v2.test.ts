/**
 * The plugin contract v2 through a real gateway and its control API: grant lifecycle hooks
 * (an activation a plugin refuses never becomes usable), tool contributions with typed
 * scopes, listActive, secretless grants, deny (admin only, never the requester, recorded
 * with its reason), maxSessions, and the one error model of the control API.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestGateway, eventually, type TestGateway } from '../harness/gateway.ts';
import { lifecyclePlugin, lifeEvents, listActive } from './fixtures/lifecycle-plugin.ts';
import { recordedClaim } from '../../core/audit/recorder.ts';
import { HTTP_STATUS } from '../../core/api/status.ts';
import { ERROR_CODES } from '../../core/errors.ts';

const config = {
  resources: { lobby: { type: 'life', access: { visit: { rooms: ['hall', 'kitchen'] }, fix: { rooms: ['boiler'] } } } },
  policies: [
    { agents: ['local:visitor'], resources: ['lobby'], access: ['visit'], maxTtl: '15m', maxSessions: 2 },
    { agents: ['local:fixer', 'local:ops'], resources: ['lobby'], access: ['fix'], maxTtl: '15m', approval: 'required' },
  ],
};

let gw: TestGateway;
let visitor: string;

before(async () => {
  gw = await startTestGateway({ config, extraPlugins: [lifecyclePlugin] });
  visitor = await gw.tokenFor('visitor');
});
after(async () => gw?.close());

const records = (type: string, grant?: string) => gw.auditRecords().filter((r) => r.type === type && (grant === undefined || r.grant === grant));

test('onGrantActive runs before the grant is reported active, with the scope parsed', async () => {
  const res = await gw.requestGrant(visitor, { resource: 'lobby', access: 'visit', ttl: '5m', task: 'look around' });
  assert.equal(res.status, 201);
  assert.deepEqual(lifeEvents.find((e) => e.hook === 'active' && e.grant === res.body.id)?.rooms, ['hall', 'kitchen']);
  assert.deepEqual(res.body.connect?.['rooms'], ['hall', 'kitchen'], 'connectInfo lives on the instance and sees the typed scope');
  assert.ok(listActive().some((g) => g.id === res.body.id && g.scope.rooms.includes('hall')), 'listActive shows the active grant');
});

test('a refused activation ends the grant (denied, reason error) and the caller gets the error', async () => {
  const res = await gw.requestGrant(visitor, { resource: 'lobby', access: 'visit', ttl: '5m', task: 'refuse-activation please' });
  assert.equal(res.status, 502);
  assert.equal(res.body['code'], 'UPSTREAM_FAILED');
  assert.match(String(res.body.error), /room service said no/);
  const denied = records('grant.denied').at(-1);
  assert.equal(denied?.data?.['rule'], 'activation');
  const id = String(denied?.grant);
  assert.equal(gw.gateway.grants.publicView(id)?.status, 'denied');
  assert.ok(lifeEvents.some((e) => e.hook === 'ended' && e.grant === id && e.reason === 'error'));
  assert.ok(!listActive().some((g) => g.id === id));
});

test('deny: admins only, never the requester, recorded with reason and admin; onGrantEnded sees it', async () => {
  const fixer = await gw.tokenFor('fixer');
  const admin = await gw.adminToken();
  const res = await gw.requestGrant(fixer, { resource: 'lobby', access: 'fix', ttl: '5m', task: 'fix the boiler' });
  assert.equal(res.status, 202);
  const id = String(res.body.id);

  const notAdmin = await gw.api('POST', `/v1/grants/${id}/deny`, fixer, { reason: 'no' });
  assert.equal(notAdmin.status, 403);
  assert.equal(notAdmin.body['code'], 'FORBIDDEN');
  const noReason = await gw.api('POST', `/v1/grants/${id}/deny`, admin, {});
  assert.equal(noReason.status, 400);
  assert.equal(noReason.body['code'], 'BAD_REQUEST');

  const own = await gw.requestGrant(admin, { resource: 'lobby', access: 'fix', ttl: '5m', task: 'my own' });
  const self = await gw.api('POST', `/v1/grants/${String(own.body.id)}/deny`, admin, { reason: 'mine' });
  assert.equal(self.status, 403);
  assert.match(String(self.body.error), /cannot deny its own grant/);

  const denied = await gw.api('POST', `/v1/grants/${id}/deny`, admin, { reason: 'the boiler is fine' });
  assert.equal(denied.status, 200);
  assert.equal(denied.body.status, 'denied');
  const rec = records('grant.denied', id).at(-1);
  assert.equal(rec?.data?.['reason'], 'the boiler is fine');
  assert.equal(rec?.data?.['by'], 'local:ops');
  assert.equal(rec?.outcome, 'denied');
  await eventually(() => lifeEvents.find((e) => e.hook === 'ended' && e.grant === id && e.reason === 'denied'), 2000, 'onGrantEnded(denied)');

  const again = await gw.api('POST', `/v1/grants/${id}/deny`, admin, { reason: 'twice' });
  assert.equal(again.status, 409);
  assert.equal(again.body['code'], 'GRANT_STATE');
  const missing = await gw.api('POST', '/v1/grants/AGAAAAAAAAAAAAAAAAAA/deny', admin, { reason: 'x' });
  assert.equal(missing.status, 404);
  assert.equal(missing.body['code'], 'GRANT_NOT_FOUND');
});

test('a secretless grant stores no verifiers and returns no secret and no connect', async () => {
  const issued = await gw.gateway.grants.request('local:visitor', { resource: 'lobby', access: 'visit', ttl: '5m', task: 'via MCP' }, { secretless: true });
  assert.equal(issued.status, 201);
  assert.equal(issued.body.secret, undefined);
  assert.equal(issued.body.connect, undefined);
  assert.deepEqual(gw.gateway.grants.record(issued.body.id)?.verifiers, {});
  assert.equal(records('grant.issued', issued.body.id).at(-1)?.data?.['secretless'], true);
  const bearer = await fetch(`${gw.url}/life/hold`, { headers: { authorization: `Bearer ${issued.body.id}.anything` } });
  assert.equal(bearer.status, 401, 'no credential can open it');
  await bearer.arrayBuffer();
});

test('tools: a contributed tool runs with the grant typed and honours its limits', async () => {
  const plugin = gw.gateway.plugins.find((p) => p.type === 'life');
  const tool = plugin?.tools.find((t) => t.name === 'list_rooms');
  assert.ok(tool, 'the tool is contributed');
  const res = await gw.requestGrant(visitor, { resource: 'lobby', access: 'visit', ttl: '5m', task: 'tool call' });
  const grant = gw.gateway.grants.view(String(res.body.id))!;
  assert.ok(tool.inputSchema.safeParse({ prefix: 'h' }).success);
  const out = await tool.run({ grant, signal: new AbortController().signal, limits: { maxRows: 1, maxBytes: 1000 } }, { prefix: '' });
  assert.deepEqual(out.structured['rooms'], ['hall']);
  assert.equal(out.text, 'hall');
});

test('maxSessions: the third live session of a grant is refused (SESSION_LIMIT), recorded; a closed one frees a place', async () => {
  const res = await gw.requestGrant(visitor, { resource: 'lobby', access: 'visit', ttl: '5m', task: 'hold three' });
  const token = res.body.connect!.env['LIFE_TOKEN']!;
  const open = async () => {
    const ac = new AbortController();
    const r = await fetch(`${gw.url}/life/hold`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
    return { r, ac };
  };
  const a = await open();
  const b = await open();
  assert.equal(a.r.status, 200);
  assert.equal(b.r.status, 200);
  const c = await open();
  assert.equal(c.r.status, 429);
  assert.equal(((await c.r.json()) as { code: string }).code, 'SESSION_LIMIT');
  assert.ok(records('policy.violation', String(res.body.id)).some((x) => x.data?.['rule'] === 'maxSessions'));
  const revoked = await gw.revoke(String(res.body.id), visitor);
  assert.equal(revoked.status, 200);
  for (const s of [a, b]) {
    const text = await s.r.text();
    assert.match(text, /closed:revoked/);
  }
  assert.equal(records('session.closed', String(res.body.id)).length, 2);
});

test('one error model: every ErrorCode has an HTTP status', () => {
  for (const code of ERROR_CODES) assert.equal(typeof HTTP_STATUS[code], 'number', code);
});

test('auth.failed records a claimed id only when it looks like a grant id, else a short hash', () => {
  assert.equal(recordedClaim('AGABCDEFGHIJKLMNOPQR'), 'AGABCDEFGHIJKLMNOPQR');
  const secret = 'q7Vb-this-is-a-pasted-secret';
  assert.equal(recordedClaim(secret), `h:${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`);
  assert.ok(!recordedClaim(secret).includes('secret'));
  assert.match(recordedClaim('ag0000'), /^h:[0-9a-f]{12}$/);
});
