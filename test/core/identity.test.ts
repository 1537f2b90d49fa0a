/**
 * Identity tokens at the control API: every bad token is a 401 with an `auth.failed`
 * record; a token from an external JWKS issuer (served over real HTTP) is accepted only
 * with its audience; repeated failures from one source are rate-limited.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, base64url, type JWK } from 'jose';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';
import { echoPlugin } from './fixtures/echo-plugin.ts';
import { localIssuerUrl } from '../../core/identity/local-issuer.ts';

let gw: TestGateway;
let jwksServer: Server;
let ciKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let jwksUrl: string;
const ciIssuer = 'https://ci.example.test';

before(async () => {
  const pair = await generateKeyPair('RS256');
  ciKey = pair.privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'ci-1', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
  gw = await startTestGateway({
    extraPlugins: [echoPlugin],
    config: {
      identity: {
        issuers: [
          { name: 'local', type: 'local' },
          { name: 'ci', type: 'jwks', issuer: ciIssuer, jwksUri: jwksUrl, audience: 'airlock' },
        ],
        admins: ['local:ops'],
      },
      resources: { things: { type: 'echo', access: { read: { things: ['a'] } } } },
      policies: [{ agents: ['local:bot', 'ci:deploy-*'], resources: ['things'], access: ['read'], maxTtl: '5m' }],
    },
  });
});
after(async () => {
  await gw?.close();
  jwksServer?.close();
});

const grantBody = { resource: 'things', access: 'read', ttl: '1m', task: 'identity test' };

async function expect401(token: string | undefined, reason: RegExp) {
  const before = gw.auditRecords().filter((r) => r.type === 'auth.failed').length;
  const res = await gw.api('POST', '/v1/grants', token, grantBody);
  assert.equal(res.status, 401, JSON.stringify(res.body));
  assert.match(String(res.body.error), reason);
  const failed = gw.auditRecords().filter((r) => r.type === 'auth.failed');
  assert.equal(failed.length, before + 1, 'an auth.failed record is written');
  assert.match(String(failed.at(-1)!.data?.reason), reason);
  assert.ok(!JSON.stringify(failed.at(-1)).includes(token ?? '\u0000'), 'the token itself is never recorded');
}

test('a valid local token gets a grant', async () => {
  const res = await gw.requestGrant(await gw.tokenFor('bot'), grantBody);
  assert.equal(res.status, 201);
});

test('missing token → 401', () => expect401(undefined, /missing bearer token/));

test('garbage token → 401', () => expect401('not-a-jwt', /malformed token/));

test('alg: none → 401', async () => {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
  const payload = base64url.encode(JSON.stringify({ iss: localIssuerUrl(gw.gateway.identity.gatewayId), aud: 'airlock', sub: 'bot', iat: now, exp: now + 600 }));
  await expect401(`${header}.${payload}.`, /token rejected/);
});

test('signed with the wrong key → 401', async () => {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid: gw.gateway.identity.key.kid })
    .setIssuer(localIssuerUrl(gw.gateway.identity.gatewayId))
    .setAudience('airlock')
    .setSubject('bot')
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(privateKey);
  await expect401(token, /signature/);
});

/** A token signed with the gateway's own key, with claims overridden per test. */
async function localToken(claims: { aud?: string; iat?: number; exp?: number }) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid: gw.gateway.identity.key.kid })
    .setIssuer(localIssuerUrl(gw.gateway.identity.gatewayId))
    .setAudience(claims.aud ?? 'airlock')
    .setSubject('bot')
    .setIssuedAt(claims.iat ?? now)
    .setExpirationTime(claims.exp ?? now + 600)
    .sign(gw.gateway.identity.key.privateKey);
}

test('wrong audience → 401', async () => expect401(await localToken({ aud: 'someone-else' }), /aud claim invalid/));

test('expired token → 401', async () => {
  const now = Math.floor(Date.now() / 1000);
  await expect401(await localToken({ iat: now - 3600, exp: now - 120 }), /expired/);
});

test('untrusted issuer → 401', async () => {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'ci-1' }).setIssuer('https://evil.test').setAudience('airlock').setSubject('x').setExpirationTime(now + 600).sign(ciKey);
  await expect401(token, /issuer is not trusted/);
});

test('external JWKS issuer: accepted with its audience, agent named ci:<sub>', async () => {
  const now = Math.floor(Date.now() / 1000);
  const good = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'ci-1' }).setIssuer(ciIssuer).setAudience('airlock').setSubject('deploy-7').setIssuedAt(now).setExpirationTime(now + 600).sign(ciKey);
  const res = await gw.requestGrant(good, grantBody);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.agent, 'ci:deploy-7');
  const wrongAud = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'ci-1' }).setIssuer(ciIssuer).setAudience('other').setSubject('deploy-7').setExpirationTime(now + 600).sign(ciKey);
  await expect401(wrongAud, /aud claim invalid/);
});

test('a non-admin cannot list sessions', async () => {
  const res = await gw.api('GET', '/v1/sessions', await gw.tokenFor('bot'));
  assert.equal(res.status, 403);
  assert.equal((await gw.api('GET', '/v1/sessions', await gw.adminToken())).status, 200);
});

test('repeated failures from one source are answered 429, yet a token that verifies is never refused', async () => {
  // Issue 11 item 5: 25 bad tokens from an address, then a valid admin token from it works.
  for (let i = 0; i < 25; i++) assert.equal((await gw.api('GET', '/v1/grants', 'bad-token')).status, 401);
  assert.equal((await gw.api('GET', '/v1/sessions', await gw.adminToken())).status, 200, 'a valid admin token after 25 bad ones');
  let status = 0;
  for (let i = 0; i < 120 && status !== 429; i++) status = (await gw.api('GET', '/v1/grants', 'bad-token')).status;
  assert.equal(status, 429, 'failures past the budget are limited');
  assert.equal((await gw.api('GET', '/v1/grants', await gw.tokenFor('bot'))).status, 200, 'an agent token from the limited address still works');
  assert.equal((await gw.api('GET', '/v1/sessions', await gw.adminToken())).status, 200, 'and so does the admin token');
  assert.equal((await gw.api('GET', '/v1/grants', 'bad-token')).status, 429, 'while bad ones stay limited');
  // What the limiter refused is accounted for: recorded in full with its code, or counted in a summary.
  const failed = gw.auditRecords().filter((r) => r.type === 'auth.failed');
  assert.ok(failed.length <= 20, `at most the first 20 of an interval are recorded in full (${failed.length})`);
  const m = await fetch(`${gw.url}/metrics`).then((r) => r.text());
  assert.match(m, /airlock_auth_failures_recorded_total\{as="summary"\} \d+/);
});

test('healthz, metrics and jwks are served', async () => {
  const health = await fetch(`${gw.url}/healthz`);
  assert.equal(health.status, 200);
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  assert.match(metrics, /airlock_grants_total\{outcome="issued"\} [1-9]/);
  assert.match(metrics, /airlock_audit_spool_depth \d+/);
  assert.match(metrics, /airlock_audit_spool_fsyncs_total [1-9]/, 'strict durability has synced the spool');
  const jwks = (await (await fetch(`${gw.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string; d?: string }> };
  assert.equal(jwks.keys[0]!.kid, gw.gateway.identity.key.kid);
  assert.equal(jwks.keys[0]!.d, undefined, 'no private key material');
});
