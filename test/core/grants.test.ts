/**
 * The grant lifecycle through the real control API: policy decisions, denials with
 * reasons and records, approval, revocation and expiry closing live sessions.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestGateway, eventually, type TestGateway } from '../harness/gateway.ts';
import { echoPlugin } from './fixtures/echo-plugin.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';

const config = {
  resources: {
    things: { type: 'echo', access: { read: { things: ['a', 'b', 'c'] }, write: { things: ['a'] } } },
    other: { type: 'echo', access: { read: { things: ['x'] } } },
  },
  policies: [
    { agents: ['local:bot-*'], resources: ['things'], access: ['read'], maxTtl: '15m' },
    { agents: ['local:careful', 'local:ops'], resources: ['things'], access: ['write'], maxTtl: '5m', approval: 'required' },
  ],
  audit: { durability: 'strict' },
};

let gw: TestGateway;
let bot: string;

before(async () => {
  gw = await startTestGateway({ config, extraPlugins: [echoPlugin] });
  bot = await gw.tokenFor('bot-1');
});
after(async () => gw?.close());

function lastRecord(type: string) {
  return gw.auditRecords().filter((r) => r.type === type).at(-1);
}

test('a grant inside policy is issued with connect info and a usable secret', async () => {
  const res = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '5m', task: 'read things' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.status, 'active');
  assert.match(String(res.body.id), /^AG[A-Z2-7]{18}$/);
  assert.ok(String(res.body.secret).length >= 22, 'secret carries at least 128 bits');
  assert.deepEqual(res.body.scope, { things: ['a', 'b', 'c'] });
  const env = res.body.connect!.env;
  assert.equal(env.ECHO_TOKEN, `${res.body.id}.${res.body.secret}`);
  const use = await fetch(`${gw.url}/echo/thing/b`, { headers: { authorization: `Bearer ${env.ECHO_TOKEN}` } });
  assert.equal(use.status, 200);
  const issued = lastRecord('grant.issued');
  assert.equal(issued?.grant, res.body.id);
  assert.equal(issued?.agent, 'local:bot-1');
  assert.equal(issued?.task, 'read things');
  // The secret is shown once: never in GET, never in the audit or the grant store.
  const view = await gw.api('GET', `/v1/grants/${res.body.id}`, bot);
  assert.equal(view.status, 200);
  assert.equal(view.body.secret, undefined);
  const spool = gw.auditFiles().map((f) => readFileSync(f, 'utf8')).join('') + readFileSync(`${gw.dataDir}/grants.jsonl`, 'utf8');
  assert.ok(!spool.includes(String(res.body.secret)), 'secret must not reach the audit');
});

test('scope narrows the access level and can never widen it', async () => {
  const narrow = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '1m', task: 't', scope: { things: ['a'] } });
  assert.equal(narrow.status, 201);
  assert.deepEqual(narrow.body.scope, { things: ['a'] });
  const out = await fetch(`${gw.url}/echo/thing/b`, { headers: { authorization: `Bearer ${narrow.body.connect!.env.ECHO_TOKEN}` } });
  assert.equal(out.status, 403);

  const wide = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '1m', task: 't', scope: { things: ['a', 'zzz'] } });
  assert.equal(wide.status, 403);
  assert.match(String(wide.body.error), /zzz.*outside/);
  assert.equal(lastRecord('grant.denied')?.data?.rule, 'scope');
});

const denials: Array<[string, Record<string, unknown>, number, RegExp]> = [
  ['over-TTL', { resource: 'things', access: 'read', ttl: '20m', task: 't' }, 403, /ttl 20m exceeds maxTtl 15m/],
  ['wrong access level', { resource: 'things', access: 'write', ttl: '1m', task: 't' }, 403, /no policy allows local:bot-1 access "write"/],
  ['unknown access level', { resource: 'things', access: 'admin', ttl: '1m', task: 't' }, 403, /no access level "admin"/],
  ['unknown resource', { resource: 'nope', access: 'read', ttl: '1m', task: 't' }, 403, /unknown resource "nope"/],
  ['resource outside policy', { resource: 'other', access: 'read', ttl: '1m', task: 't' }, 403, /no policy allows/],
  ['missing task', { resource: 'things', access: 'read', ttl: '1m' }, 400, /task/],
  ['task of invisible characters only', { resource: 'things', access: 'read', ttl: '1m', task: '\u200b\u200d\u202e\u2066 \u00a0\ufeff\u2060\u3000\u180e' }, 400, /task is required/],
  ['malformed ttl', { resource: 'things', access: 'read', ttl: 'soon', task: 't' }, 400, /not a duration/],
  ['unknown field', { resource: 'things', access: 'read', ttl: '1m', task: 't', admin: true }, 400, /unknown field admin/],
];
for (const [name, body, status, reason] of denials) {
  test(`denied: ${name} → ${status} with a reason and a grant.denied record`, async () => {
    const before = gw.auditRecords().filter((r) => r.type === 'grant.denied').length;
    const res = await gw.requestGrant(bot, body);
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.match(String(res.body.error), reason);
    const denied = gw.auditRecords().filter((r) => r.type === 'grant.denied');
    assert.equal(denied.length, before + 1);
    assert.equal(denied.at(-1)?.agent, 'local:bot-1');
    assert.equal(denied.at(-1)?.outcome, 'denied');
    assert.match(String(denied.at(-1)?.data?.reason), reason);
  });
}

test('approval: pending → approved by an admin → usable; TTL counts from approval', async () => {
  const careful = await gw.tokenFor('careful');
  const res = await gw.requestGrant(careful, { resource: 'things', access: 'write', ttl: '2m', task: 'fix a' });
  assert.equal(res.status, 202);
  assert.equal(res.body.status, 'pending');
  assert.equal(res.body.expiresAt, null);
  const token = res.body.connect!.env.ECHO_TOKEN;
  const early = await fetch(`${gw.url}/echo/thing/a`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(early.status, 401, 'a pending grant does not work');
  assert.match(((await early.json()) as { code: string }).code, /GRANT_PENDING/);

  const notAdmin = await gw.api('POST', `/v1/grants/${res.body.id}/approve`, careful);
  assert.equal(notAdmin.status, 403);
  assert.equal(lastRecord('policy.violation')?.agent, 'local:careful', 'a refused approval is recorded');
  const t0 = Date.now();
  const approved = await gw.api('POST', `/v1/grants/${res.body.id}/approve`, await gw.adminToken());
  assert.equal(approved.status, 200);
  assert.equal(approved.body.status, 'active');
  const expires = Date.parse(String(approved.body.expiresAt));
  assert.ok(expires >= t0 + 119_000 && expires <= Date.now() + 120_000, 'ttl counts from approval');
  const later = await fetch(`${gw.url}/echo/thing/a`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(later.status, 200);
  assert.equal(lastRecord('grant.approved')?.data?.by, 'local:ops');
});

async function openHold(token: string) {
  const res = await fetch(`${gw.url}/echo/hold`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const next = async () => {
    const { value, done } = await reader.read();
    if (value) text += decoder.decode(value);
    return done;
  };
  await eventually(async () => (text.includes('open:') ? true : (await next(), text.includes('open:')) || undefined), 5000, 'session open');
  return {
    async waitClosed(): Promise<string> {
      while (!text.includes('closed:')) if (await next()) break;
      return text;
    },
  };
}

test('revocation changes state and closes live sessions within 1 s', async () => {
  const res = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '10m', task: 'hold' });
  const hold = await openHold(res.body.connect!.env.ECHO_TOKEN!);
  const t0 = Date.now();
  const revoked = await gw.revoke(String(res.body.id), bot);
  assert.equal(revoked.status, 200);
  assert.equal(revoked.body.status, 'revoked');
  const text = await hold.waitClosed();
  assert.ok(Date.now() - t0 < 1000, `closed after ${Date.now() - t0} ms`);
  assert.match(text, /closed:revoked:airlock grant AG\w+ was revoked/);
  const closed = gw.auditRecords().filter((r) => r.type === 'session.closed' && r.grant === res.body.id);
  assert.equal(closed.length, 1);
  assert.equal(closed[0]!.data?.reason, 'revoked');
  const after = await fetch(`${gw.url}/echo/thing/a`, { headers: { authorization: `Bearer ${res.body.connect!.env.ECHO_TOKEN}` } });
  assert.equal(after.status, 401);
  assert.equal((await gw.api('GET', `/v1/grants/${res.body.id}`, bot)).body.status, 'revoked');
});

test('expiry changes state and closes live sessions within 1 s', async () => {
  const res = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '2s', task: 'short' });
  const hold = await openHold(res.body.connect!.env.ECHO_TOKEN!);
  const text = await hold.waitClosed();
  const late = Date.now() - Date.parse(String(res.body.expiresAt));
  assert.ok(late < 1000, `closed ${late} ms after expiry`);
  assert.match(text, /closed:expired/);
  assert.equal((await gw.api('GET', `/v1/grants/${res.body.id}`, bot)).body.status, 'expired');
  assert.ok(gw.auditRecords().some((r) => r.type === 'grant.expired' && r.grant === res.body.id));
});

test('expiry holds when the expiry timer fires before the wall clock reaches the deadline (a clock set back)', async () => {
  const res = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '2s', task: 'clock set back' });
  const hold = await openHold(res.body.connect!.env.ECHO_TOKEN!);
  const realNow = Date.now;
  // The wall clock is set back 300 ms after the grant was issued: its timer (monotonic) fires
  // while Date.now() still reads before the deadline.
  Date.now = () => realNow() - 300;
  try {
    const text = await hold.waitClosed();
    const late = realNow() - Date.parse(String(res.body.expiresAt));
    assert.ok(late < 1000, `closed ${late} ms after expiry (the sweep runs every 30 s)`);
    assert.match(text, /closed:expired/);
  } finally {
    Date.now = realNow;
  }
  assert.equal((await gw.api('GET', `/v1/grants/${res.body.id}`, bot)).body.status, 'expired');
});

test('an agent sees only its own grants; an admin sees all', async () => {
  const mine = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '1m', task: 'mine' });
  const stranger = await gw.tokenFor('bot-2');
  assert.equal((await gw.api('GET', `/v1/grants/${mine.body.id}`, stranger)).status, 404);
  assert.equal((await gw.revoke(String(mine.body.id), stranger)).status, 404);
  assert.equal((await gw.api('GET', `/v1/grants/${mine.body.id}`, await gw.adminToken())).status, 200);
});

test('an oversized request body is refused (413) and recorded', async () => {
  const res = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '1m', task: 'x'.repeat(70 * 1024) });
  assert.equal(res.status, 413);
  const rec = lastRecord('api.rejected');
  assert.equal(rec?.agent, 'local:bot-1');
  assert.match(String(rec?.data?.reason), /too large/);
});

test('an admin cannot approve its own pending grant', async () => {
  const admin = await gw.adminToken();
  const res = await gw.requestGrant(admin, { resource: 'things', access: 'write', ttl: '1m', task: 'self-approval attempt' });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const self = await gw.api('POST', `/v1/grants/${res.body.id}/approve`, admin);
  assert.equal(self.status, 403);
  assert.match(String(self.body.error), /cannot approve its own grant/);
  const violation = lastRecord('policy.violation');
  assert.equal(violation?.agent, 'local:ops');
  assert.equal(violation?.data?.action, 'approve');
  assert.equal(violation?.data?.grantId, res.body.id);
  assert.equal((await gw.api('GET', `/v1/grants/${res.body.id}`, admin)).body.status, 'pending');
});

test('admins see sessions with their events', async () => {
  const res = await gw.requestGrant(bot, { resource: 'things', access: 'read', ttl: '1m', task: 'sessions api' });
  const hold = await openHold(res.body.connect!.env.ECHO_TOKEN!);
  const admin = await gw.adminToken();
  const list = await gw.api('GET', '/v1/sessions', admin);
  const mine = (list.body.sessions as Array<{ id: string; grant: string; closedAt: string | null }>).find((s) => s.grant === res.body.id);
  assert.ok(mine, 'the live session is listed');
  assert.equal(mine.closedAt, null);
  await gw.revoke(String(res.body.id), bot);
  await hold.waitClosed();
  const one = await gw.api('GET', `/v1/sessions/${mine.id}`, admin);
  assert.equal(one.status, 200);
  assert.equal(one.body.closeReason, 'revoked');
  assert.deepEqual((one.body.events as Array<{ type: string }>).map((e) => e.type), ['session.opened', 'session.closed']);
  assert.equal((await gw.api('GET', `/v1/sessions/${mine.id}`, bot)).status, 403);
});

test('the audit of all of the above verifies', async () => {
  const result = await verifyAuditFiles(gw.auditFiles(), { publicKeys: [gw.gateway.identity.key.publicJwk] });
  assert.equal(result.ok, true, JSON.stringify(result));
});
