/**
 * The console end to end: a real gateway in front of a real PostgreSQL, driven in
 * Debian's Chromium. Sign in with a pasted token; approve, deny and revoke from the page
 * and see the state through the control API; a live session's tail shows a statement run
 * meanwhile through psql; a non-admin sees no approval controls; a cross-site form post
 * changes nothing; nothing is kept in web storage. Screenshots go to .tmp/screenshots.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { startCluster, spawnPsql, ROLE_PASSWORD } from '../postgres/fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { startTestGateway, eventually, type TestGateway } from '../harness/gateway.ts';
import { launchBrowser, signInWithToken, screenshot, type Browser } from './browser.ts';

let cluster: PostgresCluster;
let gw: TestGateway;
let browser: Browser;
let admin: Page;
let adminToken: string;
let askerToken: string;
let botToken: string;

const yaml = (port: number) => `
gateway:
  postgres: { listen: 127.0.0.1:0, tls: self-signed }
resources:
  reporting:
    type: postgres
    host: 127.0.0.1
    port: ${port}
    database: reporting
    tls: require
    auth: { type: password, passwordEnv: AIRLOCK_TEST_PG_PW }
    access:
      read: { user: agent_ro }
      write: { user: agent_rw }
policies:
  - { agents: ['local:report-bot'], resources: [reporting], access: [read], maxTtl: 15m, approval: none }
  - { agents: ['local:asker'], resources: [reporting], access: [read, write], maxTtl: 15m, approval: required }
  - { agents: ['local:ops'], resources: [reporting], access: [read], maxTtl: 15m, approval: required }
audit: { checkpointEvery: 50 }
`;

before(async () => {
  cluster = await startCluster();
  gw = await startTestGateway({ yaml: yaml(cluster.port), env: { AIRLOCK_TEST_PG_PW: ROLE_PASSWORD } });
  adminToken = await gw.adminToken();
  askerToken = await gw.tokenFor('asker');
  botToken = await gw.tokenFor('report-bot');
  browser = await launchBrowser();
  admin = await browser.newPage();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await cluster?.stop();
});

async function pendingGrant(task: string): Promise<string> {
  const res = await gw.requestGrant(askerToken, { resource: 'reporting', access: 'read', ttl: '5m', task });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id!;
}

async function statusOf(id: string): Promise<unknown> {
  return (await gw.api('GET', `/v1/grants/${id}`, adminToken)).body.status;
}

test('sign-in with a pasted token: HttpOnly Strict cookie, nothing in web storage, CSP without inline scripts', async () => {
  await admin.goto(`${gw.url}/console`);
  assert.match(admin.url(), /\/console\/signin$/);
  await screenshot(admin, 'signin');
  const res = await admin.request.get(`${gw.url}/console/signin`);
  const csp = res.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);

  await signInWithToken(admin, gw.url, adminToken);
  assert.equal(await admin.locator('h1').textContent(), 'Grants');
  assert.match((await admin.locator('header .who').textContent()) ?? '', /local:ops \(admin\)/);
  const cookie = (await browser.context.cookies(gw.url)).find((c) => c.name === 'airlock_console');
  assert.ok(cookie, 'session cookie set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.notEqual(cookie.value, adminToken);
  const storage = (await admin.evaluate('JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } })')) as string;
  assert.equal(storage, JSON.stringify({ local: {}, session: {} }));
  const records = gw.auditRecords();
  assert.ok(records.some((r) => r.type === 'console.signin' && r.agent === 'local:ops' && r.data?.method === 'token'));
});

test('a bad token is refused and recorded', async () => {
  {
    const other = await launchBrowser();
    try {
      const p = await other.newPage();
      await p.goto(`${gw.url}/console/signin`);
      await p.getByLabel('Token').fill('not.a.token');
      await p.getByRole('button', { name: 'Sign in' }).click();
      assert.match((await p.locator('.error').textContent()) ?? '', /Sign-in refused: malformed token/);
      assert.match(p.url(), /\/console\/signin$/);
    } finally {
      await other.close();
    }
  }
  await eventually(() => gw.auditRecords().some((r) => r.type === 'auth.failed' && r.data?.via === 'console'), 5000, 'auth.failed record');
});

test('approve from the page: the API shows the grant active; each grant is one row with its fields', async () => {
  const id = await pendingGrant('monthly revenue for finance');
  await admin.goto(`${gw.url}/console`);
  const row = admin.locator(`section#pending tr[data-grant="${id}"]`);
  const text = (await row.textContent()) ?? '';
  for (const part of [id, 'local:asker', 'reporting', 'read', 'monthly revenue for finance', '5m']) assert.ok(text.includes(part.replace('5m', '300s')), `row holds ${part}: ${text}`);
  await screenshot(admin, 'grants-pending');
  await row.getByRole('button', { name: 'Approve' }).click();
  await admin.waitForURL(/done=approved/);
  assert.match((await admin.locator('.notice').textContent()) ?? '', new RegExp(`Grant ${id} approved`));
  assert.equal(await statusOf(id), 'active');
  const activeRow = admin.locator(`section#active tr[data-grant="${id}"]`);
  assert.match((await activeRow.textContent()) ?? '', /\dm \d+s/);
});

test('deny with a reason from the page: the API shows it denied; the record carries reason and admin', async () => {
  const id = await pendingGrant('drop the staging copy');
  await admin.goto(`${gw.url}/console`);
  const row = admin.locator(`section#pending tr[data-grant="${id}"]`);
  await row.getByPlaceholder('reason').fill('not during the change freeze');
  await row.getByRole('button', { name: 'Deny' }).click();
  await admin.waitForURL(/done=denied/);
  assert.equal(await statusOf(id), 'denied');
  const rec = await eventually(() => gw.auditRecords().find((r) => r.type === 'grant.denied' && r.grant === id), 5000, 'grant.denied');
  assert.equal(rec.data?.reason, 'not during the change freeze');
  assert.equal(rec.data?.by, 'local:ops');
});

test('four eyes: an admin gets no approval controls for its own grant, and a forged approve is refused', async () => {
  const res = await gw.requestGrant(adminToken, { resource: 'reporting', access: 'read', ttl: '5m', task: 'ops asks for itself' });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const id = res.body.id!;
  await admin.goto(`${gw.url}/console`);
  const row = admin.locator(`section#pending tr[data-grant="${id}"]`);
  assert.match((await row.textContent()) ?? '', /needs another admin/);
  assert.equal(await row.getByRole('button', { name: 'Approve' }).count(), 0);
  // Even with this session's own form token, the service refuses self-approval.
  const csrf = await admin.locator('input[name="_csrf"]').first().inputValue();
  const status = await admin.evaluate(
    async ([grant, token]) => (await fetch(`/console/grants/${grant}/approve`, { method: 'POST', body: new URLSearchParams({ _csrf: token! }) })).status,
    [id, csrf],
  );
  assert.equal(status, 403);
  assert.equal(await statusOf(id), 'pending');
  await eventually(() => gw.auditRecords().some((r) => r.type === 'policy.violation' && r.data?.grantId === id), 5000, 'policy.violation');
});

test('a cross-site form post changes nothing (cookie sent, Origin foreign, no CSRF token)', async () => {
  const id = await pendingGrant('cross-site target');
  const attacker: Server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<form id="f" method="post" action="${gw.url}/console/grants/${id}/approve"><input name="_csrf" value="guess"></form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
  try {
    const page = await browser.newPage();
    try {
      const port = (attacker.address() as AddressInfo).port;
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForURL(/\/console\/grants\//);
      assert.match((await page.locator('.error').textContent()) ?? '', /Refused: cross-origin request/);
    } finally {
      await page.close();
    }
  } finally {
    attacker.close();
  }
  assert.equal(await statusOf(id), 'pending');
  // Same origin but without the form's token: refused too.
  const status = await admin.evaluate(async (grant) => (await fetch(`/console/grants/${grant}/approve`, { method: 'POST', body: new URLSearchParams({ _csrf: 'wrong' }) })).status, id);
  assert.equal(status, 403);
  assert.equal(await statusOf(id), 'pending');
  await eventually(() => gw.auditRecords().filter((r) => r.type === 'console.rejected').length >= 2 || undefined, 5000, 'console.rejected records');
});

test('a live session: its tail shows a statement run meanwhile through psql; revoke from the page ends it', async () => {
  const res = await gw.requestGrant(botToken, { resource: 'reporting', access: 'read', ttl: '5m', task: 'live tail demo' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const id = res.body.id!;
  const child = spawnPsql(res.body.connect!.env, []);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  try {
    child.stdin!.write('select 1;\n');
    await eventually(async () => {
      const list = (await gw.api('GET', '/v1/sessions', adminToken)).body.sessions as Array<{ grant: string; closedAt: string | null }>;
      return list.some((s) => s.grant === id && s.closedAt === null) || undefined;
    }, 15_000, 'the psql session to be live');
    await admin.goto(`${gw.url}/console/sessions`);
    const row = admin.locator(`tr[data-grant="${id}"]`);
    await row.waitFor();
    await screenshot(admin, 'sessions');
    await row.locator('a').first().click();
    await admin.locator('#tail').waitFor();
    child.stdin!.write("select 'tail-marker-' || 42;\n");
    await admin.locator('#tail li', { hasText: 'tail-marker-' }).waitFor({ timeout: 15_000 });
    await screenshot(admin, 'session-tail');

    await admin.goto(`${gw.url}/console/sessions`);
    await admin.locator(`tr[data-grant="${id}"]`).getByRole('button', { name: 'Revoke' }).click();
    await admin.waitForURL(/done=revoked/);
    assert.equal(await statusOf(id), 'revoked');
    // The connection was cut: the next statement fails and psql exits.
    child.stdin!.end('select 2;\n');
    await exited;
    assert.match(out, /revoked|terminat|closed/i);
  } finally {
    child.kill();
  }
});

test('a non-admin sees only its own grants and no approval controls', async () => {
  const own = await pendingGrant('asker sees this');
  await gw.requestGrant(botToken, { resource: 'reporting', access: 'read', ttl: '5m', task: 'bot grant, not for asker' });
  const other = await launchBrowser();
  try {
    const page = await other.newPage();
    await signInWithToken(page, gw.url, askerToken);
    await page.locator(`tr[data-grant="${own}"]`).first().waitFor();
    await screenshot(page, 'grants-non-admin');
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Deny' }).count(), 0);
    const agents = await page.locator('td[data-label="agent"]').allTextContents();
    assert.ok(agents.length > 0 && agents.every((a) => a === 'local:asker'), agents.join(','));
    assert.equal(await page.locator('nav a', { hasText: 'Audit' }).count(), 0);
    const audit = await page.goto(`${gw.url}/console/audit`);
    assert.equal(audit?.status(), 403);
  } finally {
    await other.close();
  }
});

test('audit page: filters, paging and the chain verification state', async () => {
  await admin.goto(`${gw.url}/console/audit`);
  assert.equal(await admin.locator('#chain-state').getAttribute('data-state'), 'intact');
  await screenshot(admin, 'audit');
  await admin.getByLabel('type').fill('grant.denied');
  await admin.getByRole('button', { name: 'Filter' }).click();
  const types = await admin.locator('td[data-label="type"]').allTextContents();
  assert.ok(types.length >= 1 && types.every((t) => t === 'grant.denied'), types.join(','));
  await admin.goto(`${gw.url}/console/audit?agent=local:asker`);
  const agents = await admin.locator('td[data-label="agent"]').allTextContents();
  assert.ok(agents.length >= 1 && agents.every((t) => t === 'local:asker'));
  // Paging: 100 per page; make sure there are more, then follow "Older".
  // (Authenticated work is recorded in full; unauthenticated noise is summarised, so it
  // would not fill a page.) Each refused request writes grant.requested and grant.denied.
  for (let i = 0; i < 70; i++) await gw.requestGrant(botToken, { resource: 'reporting', access: 'read', ttl: 'not-a-duration', task: `paging ${i}` });
  await eventually(async () => {
    await admin.goto(`${gw.url}/console/audit`);
    return (await admin.locator('a', { hasText: 'Older' }).count()) > 0 || undefined;
  }, 5000, 'an older page');
  const firstPage = await admin.locator('td[data-label="seq"]').allTextContents();
  await admin.locator('a', { hasText: 'Older' }).click();
  const second = await admin.locator('td[data-label="seq"]').allTextContents();
  assert.equal(firstPage.length, 100);
  assert.ok(Number(second[0]) < Number(firstPage.at(-1)), 'older page continues below the first');
  // Past checkpointEvery records, signed checkpoints are verified as they arrive.
  assert.match((await admin.locator('#chain-state').textContent()) ?? '', /Chain intact: \d+ records verified .* [1-9]\d* signed checkpoints/);
});

test('sign-out ends the server-side session', async () => {
  await admin.goto(`${gw.url}/console`);
  await admin.getByRole('button', { name: 'Sign out' }).click();
  await admin.waitForURL(/\/console\/signin$/);
  await admin.goto(`${gw.url}/console`);
  assert.match(admin.url(), /\/console\/signin$/);
});
