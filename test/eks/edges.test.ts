/**
 * Issue 18 on the EKS path, with kubectl, raw HTTP and WebSocket through the real gateway
 * (TLS, strict audit) to the stand-in EKS API server: a padded exec is recorded whole (a
 * longer query refused); a log without follow and a list are sessions of their grant, cut
 * at revocation and expiry; impersonation in any header spelling is refused with the
 * identity asked for recorded; every credential failure and every unknown or unauthenticated
 * resource path answers alike (and is audited); 300 bad bearer tokens are limited while a
 * valid grant from the same address works; the per-grant stream cap applies.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import WebSocket from 'ws';
import { startTestGateway, eventually, type TestGateway, ownAwsIdentityEnv } from '../harness/gateway.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { startEksApiServer, type EksApiServer } from '../stand-ins/eks-api-server.ts';

const KEYS = { accessKeyId: 'AKIAAIRLOCKEKSTEST01', secretAccessKey: 'airlock-eks-test-secret-key-0000000000000' };
const AGENT = 'kube-edge';

let cluster: EksApiServer;
let gw: TestGateway;
let agentToken: string;
let work: string;
let ca: string;
let savedDispatcher: Dispatcher | undefined;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'airlock-eks-edges-'));
  cluster = await startEksApiServer({ cluster: 'prod', keys: KEYS, tickMs: 100 });
  const level = { verbs: ['get', 'list', 'watch', 'create'], resources: ['pods', 'pods/log', 'pods/exec'], namespaces: ['default'] };
  gw = await startTestGateway({
    env: ownAwsIdentityEnv(KEYS),
    config: {
      gateway: { http: { listen: '127.0.0.1:0', tls: 'self-signed' } },
      aws: { region: 'us-east-1' },
      resources: {
        prod: { type: 'eks', cluster: 'prod', region: 'us-east-1', endpoint: cluster.url, caFile: cluster.caFile, access: { ops: level } },
        capped: { type: 'eks', cluster: 'prod', region: 'us-east-1', endpoint: cluster.url, caFile: cluster.caFile, access: { ops: level } },
        orders: { type: 'dynamodb', region: 'us-east-1', tables: ['orders'], access: { read: ['GetItem'] } },
      },
      policies: [
        { agents: [`local:${AGENT}`], resources: ['prod', 'orders'], access: ['ops', 'read'], maxTtl: '15m' },
        { agents: [`local:${AGENT}`], resources: ['capped'], access: ['ops'], maxTtl: '15m', maxSessions: 2 },
      ],
      audit: { durability: 'strict', authFailureSummaryInterval: '2s' },
    },
  });
  agentToken = await gw.tokenFor(AGENT);
  ca = readFileSync(join(gw.dataDir, 'tls', 'self-signed.crt'), 'utf8');
  savedDispatcher = getGlobalDispatcher();
  setGlobalDispatcher(new Agent({ connect: { ca } }));
});

after(async () => {
  if (savedDispatcher) setGlobalDispatcher(savedDispatcher);
  await gw?.close();
  await cluster?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

let n = 0;
async function grant(resource = 'prod', access = 'ops', ttl = '5m'): Promise<{ id: string; bearer: string; kubeconfig: string }> {
  const res = await gw.requestGrant(agentToken, { resource, access, ttl, task: `eks edges ${++n}` });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const path = join(work, `kubeconfig-${n}`);
  if (res.body.connect?.kubeconfig) writeFileSync(path, String(res.body.connect.kubeconfig), { mode: 0o600 });
  return { id: res.body.id!, bearer: `${res.body.id}.${res.body.secret}`, kubeconfig: path };
}

function kubectl(kubeconfig: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', ['--request-timeout=20s', ...args], { env: { PATH: process.env.PATH ?? '', HOME: work, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(work, 'cache') }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0, stdout, stderr });
    });
  });
}

const records = (): AuditRecord[] => gw.auditRecords();
const call = (path: string, bearer?: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${gw.url}/eks/${path}`, { headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...headers }, ...(signal ? { signal } : {}) });

function execOver(bearer: string, query: string): Promise<{ status?: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.url.replace(/^https/, 'wss')}/eks/prod/api/v1/namespaces/default/pods/web-1/exec?${query}`, ['v5.channel.k8s.io'], { ca, headers: { authorization: `Bearer ${bearer}` } });
    let stdout = '';
    ws.on('message', (d: Buffer) => void (d[0] === 1 && (stdout += d.subarray(1).toString())));
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0, stdout }));
    ws.once('close', () => resolve({ stdout }));
    ws.once('error', reject);
  });
}

/** Read a streamed body until it ends; resolves with the bytes and how it ended. */
async function drain(res: Response): Promise<{ bytes: number; text: string }> {
  const reader = res.body!.getReader();
  let bytes = 0;
  let tail = '';
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch {
      return { bytes, text: tail };
    }
    if (chunk.done) return { bytes, text: tail };
    bytes += chunk.value.length;
    tail = (tail + Buffer.from(chunk.value).toString('latin1')).slice(-400);
  }
}

describe('eks edges (issue 18)', () => {
  test('a padded exec is recorded whole; a query beyond 64 KiB is refused and recorded, never cut', async () => {
    const g = await grant();
    const padded = `command=echo&command=${encodeURIComponent(' '.repeat(4_000))}&command=${encodeURIComponent('payload-after-padding')}&stdout=true`;
    const out = await execOver(g.bearer, padded);
    assert.match(out.stdout, /payload-after-padding/);
    const rec = records().find((r) => r.type === 'k8s.request' && r.grant === g.id && r.data?.['subresource'] === 'exec');
    assert.ok(String(rec?.data?.['command']).endsWith('payload-after-padding'), 'the command past the padding is in the record');
    assert.ok(String(rec?.data?.['query']).includes('payload-after-padding'));

    // Beyond the bound nothing is cut: a query that long is refused (by Node's header limit
    // before airlock, or by airlock's 64 KiB bound), never forwarded with a partial record.
    const seen = cluster.seen.length;
    const huge = `command=echo&command=${'x'.repeat(70 * 1024)}&command=hidden&stdout=true`;
    const refused = await execOver(g.bearer, huge);
    assert.ok(refused.status === 413 || refused.status === 431, String(refused.status));
    assert.equal(cluster.seen.length, seen, 'the cluster never saw it');
    assert.ok(!records().some((r) => JSON.stringify(r.data ?? {}).includes('x'.repeat(4096))), 'no prefix of it is recorded');
  });

  test('a log without follow and a list are sessions: revocation and expiry end them', async () => {
    const g = await grant();
    const res = await call('prod/api/v1/namespaces/default/pods/flood/log', g.bearer);
    assert.equal(res.status, 200);
    const drained = drain(res);
    await eventually(() => records().some((r) => r.type === 'session.opened' && r.grant === g.id && r.data?.['stream'] === 'log') || undefined, 5_000, 'a session for the log');
    assert.equal((await gw.revoke(g.id, await gw.adminToken())).status, 200);
    const ended = await Promise.race([drained, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('the non-follow log still streams 10 s after revocation')), 10_000))]);
    assert.match(ended.text, /revoked/);
    assert.equal(records().find((r) => r.type === 'session.closed' && r.grant === g.id)?.data?.['reason'], 'revoked');

    const short = await grant('prod', 'ops', '3s');
    const log = await call('prod/api/v1/namespaces/default/pods/flood/log', short.bearer);
    const cut = await Promise.race([drain(log), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('the non-follow log outlived its grant by 15 s')), 18_000))]);
    assert.match(cut.text, /expired/);
    assert.equal(records().find((r) => r.type === 'session.closed' && r.grant === short.id)?.data?.['reason'], 'expired');

    const endless = await grant();
    const listing = await call('prod/api/v1/namespaces/default/pods?labelSelector=airlock-test%3Dendless', endless.bearer);
    assert.equal(listing.status, 200);
    const listed = drain(listing);
    await eventually(() => records().some((r) => r.type === 'session.opened' && r.grant === endless.id && r.data?.['stream'] === 'list') || undefined, 5_000, 'a session for the list');
    assert.equal((await gw.revoke(endless.id, await gw.adminToken())).status, 200);
    await Promise.race([listed, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('the list still streams 10 s after revocation')), 10_000))]);
    assert.equal(records().find((r) => r.type === 'session.closed' && r.grant === endless.id)?.data?.['reason'], 'revoked');
    await eventually(() => cluster.openStreams() === 0 || undefined, 5_000, 'the upstream list closed');

    const lister = await grant();
    const list = await kubectl(lister.kubeconfig, ['get', 'pods']);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(records().some((r) => r.type === 'session.opened' && r.grant === lister.id && r.data?.['stream'] === 'list'), 'a list is a session of its grant');
  });

  test('impersonation in any header spelling is refused with the identity asked for recorded', async () => {
    const g = await grant();
    const before = cluster.seen.length;
    for (const header of ['Impersonate_User', 'impersonate-user', 'IMPERSONATE-GROUP', 'Impersonate_Extra_scopes']) {
      const res = await call('prod/api/v1/namespaces/default/pods', g.bearer, { [header]: 'system:admin' });
      assert.equal(res.status, 403, header);
      assert.match(((await res.json()) as { message: string }).message, /impersonation is not allowed/);
    }
    assert.equal(cluster.seen.length, before, 'none reached the cluster');
    const refusals = records().filter((r) => r.type === 'k8s.request' && r.grant === g.id && r.outcome === 'denied');
    assert.equal(refusals.length, 4);
    assert.ok(refusals.every((r) => String(r.data?.['impersonate']).includes('system:admin')));
    const violations = records().filter((r) => r.type === 'policy.violation' && r.grant === g.id);
    assert.ok(violations.some((r) => (r.data?.['impersonate'] as Record<string, string>)['impersonate_user'] === 'system:admin'));
  });

  test('every credential failure and every unknown or unauthenticated resource path answers alike, audited', async () => {
    const g = await grant();
    const other = await grant('orders', 'read');
    const answers = await Promise.all(
      [
        ['prod/version', `${g.id}.not-the-secret`],
        ['prod/version', 'AGAAAAAAAAAAAAAAAAAA.some-secret'],
        ['prod/version', other.bearer],
        ['capped/version', g.bearer],
        ['nope/version', g.bearer],
        ['nope/version', undefined],
        ['prod/version', undefined],
      ].map(async ([path, bearer]) => {
        const r = await call(path!, bearer);
        return `${r.status} ${await r.text()}`;
      }),
    );
    const wrongSecret = answers[0]!;
    assert.match(wrongSecret, /^401 /);
    for (const a of answers.slice(1, 5)) assert.equal(a, wrongSecret);
    assert.equal(answers[5], answers[6], 'no credentials: a configured and an unconfigured name answer alike');
    assert.match(answers[6]!, /^401 /);
    assert.ok(!answers.join('\n').includes('orders') && !answers.join('\n').includes('nope'), 'nothing about which resources exist');
    const failed = records().filter((r) => r.type === 'auth.failed' && r.data?.['path'] === '/version');
    assert.ok(failed.some((r) => r.resource === 'nope'), 'an unknown resource path is audited');
    assert.ok(failed.some((r) => r.data?.['code'] === 'WRONG_RESOURCE'), 'the cause stays in the audit');
  });

  test('300 bad bearer tokens are limited; a valid grant from the same address still works', async () => {
    const g = await grant();
    const statuses: number[] = [];
    for (let i = 0; i < 300; i++) statuses.push((await call('prod/api/v1/namespaces/default/pods', `${g.id}.wrong-${i}`)).status);
    assert.ok(statuses.includes(429), 'failures past the budget are answered 429');
    assert.ok(statuses.every((s) => s === 401 || s === 429));
    const ok = await kubectl(g.kubeconfig, ['get', 'pods']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /web-1/);
    const full = records().filter((r) => r.type === 'auth.failed').length;
    assert.ok(full < 150, `not one record per failure (${full})`);
    await eventually(() => records().some((r) => r.type === 'auth.failed.summary' && Number(r.data?.['count']) > 0) || undefined, 10_000, 'a summary of the rest');
  });

  test('policies[].maxSessions caps the live streams of a grant (SESSION_LIMIT)', async () => {
    const g = await grant('capped');
    const aborts = [new AbortController(), new AbortController()];
    try {
      const a = await call('capped/api/v1/namespaces/default/pods?watch=true', g.bearer, {}, aborts[0]!.signal);
      const b = await call('capped/api/v1/namespaces/default/pods/web-1/log?follow=true', g.bearer, {}, aborts[1]!.signal);
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      const c = await call('capped/api/v1/namespaces/default/pods/web-1/log', g.bearer);
      assert.equal(c.status, 429);
      assert.match(await c.text(), /TooManyRequests|session/i);
      const d = await call('capped/api/v1/namespaces/default/pods/web-1', g.bearer);
      assert.equal(d.status, 200, 'a plain get is not a stream');
      await d.text();
    } finally {
      for (const ac of aborts) ac.abort();
    }
  });
});
