/**
 * Notifications end to end: a real gateway, real grants through the control API, and
 * loopback receivers. A signed webhook gets grant.pending/approved/denied/revoked with
 * signatures that verify; a receiver down for 30 s gets every event afterwards exactly
 * once per event id, also across a gateway restart; a Slack-format receiver gets a
 * message with the console's approve link; /metrics counts sent and failed per target.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, eventually, type TestGateway } from '../harness/gateway.ts';
import { startReceiver, type Receiver } from './receiver.ts';

const SECRET = 'test-hook-secret-0123456789';
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const yaml = (hook: string) => `
resources:
  reporting:
    type: postgres
    host: 127.0.0.1
    port: 1
    database: reporting
    tls: disable
    auth: { type: password, passwordEnv: AIRLOCK_TEST_PG_PW }
    access:
      read: { user: agent_ro }
policies:
  - { agents: ['local:asker'], resources: [reporting], access: [read], maxTtl: 15m, approval: required }
gateway:
  postgres: { listen: 127.0.0.1:0 }
notify:
  - { type: webhook, url: '${hook}', secretEnv: AIRLOCK_TEST_HOOK_SECRET, events: [grant.pending, grant.approved, grant.denied, grant.revoked] }
  - { type: slack, webhookUrlEnv: AIRLOCK_TEST_SLACK_URL, events: [grant.pending] }
`;

async function start(hook: Receiver, slack: Receiver, dataDir?: string): Promise<TestGateway> {
  return startTestGateway({
    yaml: yaml(hook.url),
    env: { AIRLOCK_TEST_PG_PW: 'unused', AIRLOCK_TEST_HOOK_SECRET: SECRET, AIRLOCK_TEST_SLACK_URL: slack.url },
    ...(dataDir ? { dataDir } : {}),
  });
}

/** pending → approved → revoked, and pending → denied: the four events, twice pending. */
async function lifecycle(gw: TestGateway): Promise<{ approved: string; denied: string }> {
  const asker = await gw.tokenFor('asker');
  const admin = await gw.adminToken();
  const a = await gw.requestGrant(asker, { resource: 'reporting', access: 'read', ttl: '5m', task: 'quarterly numbers' });
  assert.equal(a.status, 202, JSON.stringify(a.body));
  const b = await gw.requestGrant(asker, { resource: 'reporting', access: 'read', ttl: '5m', task: 'second look' });
  assert.equal(b.status, 202);
  assert.equal((await gw.api('POST', `/v1/grants/${a.body.id}/approve`, admin)).status, 200);
  await gw.gateway.grants.deny(b.body.id!, 'local:ops', 'not needed');
  assert.equal((await gw.revoke(a.body.id!, admin)).status, 200);
  return { approved: a.body.id!, denied: b.body.id! };
}

function expectedEvents(ids: { approved: string; denied: string }): string[] {
  return [`grant.pending ${ids.approved}`, `grant.pending ${ids.denied}`, `grant.approved ${ids.approved}`, `grant.denied ${ids.denied}`, `grant.revoked ${ids.approved}`].sort();
}

function seen(r: Receiver): string[] {
  return r.deliveries.map((d) => `${String(d.body.event)} ${String((d.body.grant as { id?: unknown }).id)}`).sort();
}

function assertOncePerEventId(r: Receiver): void {
  const ids = r.deliveries.map((d) => d.eventId);
  assert.ok(ids.every((id) => /^gw-[\w-]+-\d+$/.test(id)), ids.join(','));
  assert.equal(new Set(ids).size, ids.length, `an event id was delivered twice: ${ids.join(',')}`);
}

test('signed webhook gets pending, approved, denied and revoked; Slack gets the approve link; /metrics counts', async () => {
  const hook = await startReceiver(SECRET);
  const slack = await startReceiver(undefined);
  cleanups.push(() => hook.close(), () => slack.close());
  const gw = await start(hook, slack);
  cleanups.push(() => gw.close());

  const ids = await lifecycle(gw);
  await eventually(() => hook.deliveries.length >= 5 || undefined, 15_000, 'five webhook deliveries');
  assert.deepEqual(seen(hook), expectedEvents(ids));
  assertOncePerEventId(hook);
  for (const d of hook.deliveries) {
    assert.ok(d.signatureOk, `signature verifies for ${d.eventId}`);
    assert.ok(d.signatureAgeS < 60, 'timestamp is current (receivers keep a replay window)');
    assert.deepEqual(Object.keys(d.body).sort(), ['consoleUrl', 'event', 'grant']);
    assert.deepEqual(Object.keys(d.body.grant as object).sort(), ['access', 'agent', 'expiresAt', 'id', 'resource', 'scope', 'status', 'task']);
    assert.doesNotMatch(d.raw, /secret|verifier/i);
  }
  const approved = hook.deliveries.find((d) => d.body.event === 'grant.approved')!;
  assert.deepEqual({ ...(approved.body.grant as object), expiresAt: undefined }, {
    id: ids.approved,
    agent: 'local:asker',
    resource: 'reporting',
    access: 'read',
    scope: (approved.body.grant as { scope: unknown }).scope,
    task: 'quarterly numbers',
    status: 'active',
    expiresAt: undefined,
  });
  assert.match(String((approved.body.grant as { expiresAt: unknown }).expiresAt), /^\d{4}-\d\d-\d\dT/);
  const denied = hook.deliveries.find((d) => d.body.event === 'grant.denied')!;
  assert.equal((denied.body.grant as { status: string }).status, 'denied');
  assert.equal(approved.body.consoleUrl, `${gw.url}/console/grants/${ids.approved}`);

  await eventually(() => slack.deliveries.length >= 2 || undefined, 15_000, 'two Slack messages');
  assert.equal(slack.deliveries.length, 2, 'Slack is subscribed to grant.pending only');
  for (const d of slack.deliveries) {
    const text = String(d.body.text);
    assert.match(text, /grant\.pending/);
    assert.match(text, new RegExp(`${gw.url.replace(/[.]/g, '\\.')}/console/grants/AG\\w+`));
    const blocks = d.body.blocks as Array<{ type: string; elements?: Array<{ url?: string; text?: { text: string } }> }>;
    const button = blocks.find((b) => b.type === 'actions')!.elements![0]!;
    assert.equal(button.text?.text, 'Approve or deny');
    assert.ok(button.url?.startsWith(`${gw.url}/console/grants/`));
  }
  // The link opens the console's page for that grant (sign-in first).
  const link = (slack.deliveries[0]!.body.blocks as Array<{ elements?: Array<{ url: string }> }>)[1]!.elements![0]!.url;
  const res = await fetch(link, { redirect: 'manual' });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get('location'), '/console/signin');

  const metrics = (await gw.api('GET', '/metrics', undefined)).body.text as string;
  assert.match(metrics, /airlock_notify_deliveries_total\{target="webhook#0",outcome="sent"\} 5/);
  assert.match(metrics, /airlock_notify_deliveries_total\{target="slack#1",outcome="sent"\} 2/);
  assert.match(metrics, /airlock_notify_deliveries_total\{target="webhook#0",outcome="failed"\} 0/);
});

test('a receiver down for 30 s gets every event afterwards, exactly once per event id, also across a restart', async () => {
  const hook = await startReceiver(SECRET);
  const slack = await startReceiver(undefined);
  cleanups.push(() => hook.close(), () => slack.close());
  const dataDir = mkdtempSync(join(tmpdir(), 'airlock-notify-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  let gw = await start(hook, slack, dataDir);
  cleanups.push(() => gw.close());

  // Down while the gateway runs: grants are not held up, deliveries retry with back-off.
  await hook.down();
  const t0 = Date.now();
  const first = await lifecycle(gw);
  assert.ok(Date.now() - t0 < 20_000, 'grant calls did not wait for the receiver');
  await new Promise((r) => setTimeout(r, 30_000));
  const metrics = (await gw.api('GET', '/metrics', undefined)).body.text as string;
  const failed = Number(/airlock_notify_deliveries_total\{target="webhook#0",outcome="failed"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(failed >= 3, `retried while down (failed attempts: ${failed})`);
  await hook.up();
  await eventually(() => hook.deliveries.length >= 5 || undefined, 30_000, 'deliveries after the receiver came back');

  // Down again, then the gateway restarts with events still queued in the spool.
  await hook.down();
  const second = await lifecycle(gw);
  await gw.close({ keepDataDir: true });
  await hook.up();
  gw = await start(hook, slack, dataDir);
  await eventually(() => hook.deliveries.length >= 10 || undefined, 30_000, 'deliveries after the restart');
  await new Promise((r) => setTimeout(r, 1500)); // anything extra would show up now

  assert.deepEqual(seen(hook), [...expectedEvents(first), ...expectedEvents(second)].sort());
  assertOncePerEventId(hook);
  assert.ok(hook.deliveries.every((d) => d.signatureOk));
});
