/**
 * Console sign-in through OIDC (authorization code + PKCE) against oidc-provider on
 * loopback, in Debian's Chromium: a public client and a confidential one
 * (`clientSecretEnv`), the identity `<issuer name>:<sub>`, admin rights from
 * `identity.admins`, and a callback that was not started in this browser is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';
import { startTestGateway, eventually, type TestGateway } from '../harness/gateway.ts';
import { launchBrowser, screenshot, within, type Browser } from './browser.ts';

let idp: Server;
let issuer: string;
let gw: TestGateway;
let browser: Browser;
const CONF_SECRET = 'confidential-client-secret-for-tests';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

before(async () => {
  const gwPort = await freePort();
  const gwUrl = `http://127.0.0.1:${gwPort}`;
  const idpPort = await freePort();
  issuer = `http://127.0.0.1:${idpPort}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'test-key' };
  const provider = new Provider(issuer, {
    clients: [
      { client_id: 'console-public', token_endpoint_auth_method: 'none', redirect_uris: [`${gwUrl}/console/oidc/corp/callback`], grant_types: ['authorization_code'], response_types: ['code'] },
      { client_id: 'console-conf', client_secret: CONF_SECRET, token_endpoint_auth_method: 'client_secret_basic', redirect_uris: [`${gwUrl}/console/oidc/corp2/callback`], grant_types: ['authorization_code'], response_types: ['code'] },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ['test-cookie-key-0123456789'] },
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
  });
  idp = createServer(provider.callback());
  await new Promise<void>((r) => idp.listen(idpPort, '127.0.0.1', r));

  gw = await startTestGateway({
    config: {
      gateway: { http: { listen: `127.0.0.1:${gwPort}` } },
      identity: {
        issuers: [
          { name: 'local', type: 'local' },
          { name: 'corp', type: 'jwks', issuer, jwksUri: `${issuer}/jwks`, audience: 'airlock', clientId: 'console-public' },
          { name: 'corp2', type: 'jwks', issuer, jwksUri: `${issuer}/jwks`, audience: 'airlock', clientId: 'console-conf', clientSecretEnv: 'AIRLOCK_TEST_OIDC_SECRET' },
        ],
        admins: ['corp:alice'],
      },
    },
    env: { AIRLOCK_TEST_OIDC_SECRET: CONF_SECRET },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await new Promise<void>((r) => (idp ? idp.close(() => r()) : r()));
});

async function signInThroughIdp(page: Page, issuerName: string, login: string): Promise<void> {
  await page.goto(`${gw.url}/console/signin`);
  await page.getByRole('link', { name: issuerName, exact: true }).click();
  await page.waitForURL((u) => u.toString().startsWith(issuer));
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${gw.url}/console`);
}

test('OIDC sign-in with PKCE (public client): an admin from identity.admins', async () => {
  const page = await browser.newPage();
  try {
    await signInThroughIdp(page, 'corp', 'alice');
    assert.equal(await page.locator('h1').textContent(), 'Grants');
    assert.match((await page.locator('header .who').textContent()) ?? '', /corp:alice \(admin\)/);
    assert.equal(await page.locator('nav a', { hasText: 'Audit' }).count(), 1);
    await screenshot(page, 'oidc-signed-in');
    const cookies = await browser.context.cookies(gw.url);
    const session = cookies.find((c) => c.name === 'airlock_console');
    assert.ok(session?.httpOnly && session.sameSite === 'Strict');
    assert.equal(cookies.find((c) => c.name === 'airlock_console_oidc'), undefined, 'the flow cookie is gone');
    const storage = (await within('reading the page storage', page.evaluate('JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } })'))) as string;
    assert.equal(storage, JSON.stringify({ local: {}, session: {} }));
    await eventually(() => gw.auditRecords().some((r) => r.type === 'console.signin' && r.agent === 'corp:alice' && r.data?.method === 'oidc'), 5000, 'console.signin');
    await page.getByRole('button', { name: 'Sign out' }).click();
    // Closing a page while its sign-out POST is still navigating could hang Chromium's close.
    await page.waitForURL(/\/console\/signin$/);
  } finally {
    await within('closing the page', page.close());
  }
});

test('OIDC sign-in as a confidential client (clientSecretEnv): a non-admin', async () => {
  // A fresh profile: the identity provider's own session for alice must not carry over.
  const other = await launchBrowser();
  const page = await other.newPage();
  try {
    await signInThroughIdp(page, 'corp2', 'bob');
    assert.equal(await page.locator('header .who span').textContent(), 'corp2:bob');
    assert.equal(await page.locator('nav a', { hasText: 'Audit' }).count(), 0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    // Closing a page while its sign-out POST is still navigating could hang Chromium's close.
    await page.waitForURL(/\/console\/signin$/);
  } finally {
    await other.close();
  }
});

test('a callback not started in this browser is refused and recorded', async () => {
  const page = await browser.newPage();
  try {
    const res = await page.goto(`${gw.url}/console/oidc/corp/callback?state=forged&code=forged`);
    assert.equal(res?.status(), 400);
    assert.match((await page.locator('.error').textContent()) ?? '', /not started in this browser/);
    await page.goto(`${gw.url}/console`);
    assert.match(page.url(), /\/console\/signin$/);
  } finally {
    await within('closing the page', page.close());
  }
  await eventually(() => gw.auditRecords().some((r) => r.type === 'auth.failed' && r.data?.code === 'BAD_IDENTITY' && String(r.data?.reason).includes('sign-in state')), 5000, 'auth.failed for a callback without sign-in state');
});
