/**
 * End to end: the real kubectl 1.32, with the kubeconfig from an eks grant, through the
 * real gateway (TLS on, strict audit) to the stand-in EKS API server, which checks every
 * EKS token as aws-iam-authenticator would. In scope works; out of scope is refused with a
 * Status and never reaches the cluster; streams end with the grant; the audit verifies.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import WebSocket from 'ws';
import { startTestGateway, eventually, type TestGateway, ownAwsIdentityEnv } from '../harness/gateway.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { startEksApiServer, type EksApiServer } from '../stand-ins/eks-api-server.ts';

const KEYS = { accessKeyId: 'AKIAAIRLOCKEKSTEST01', secretAccessKey: 'airlock-eks-test-secret-key-0000000000000' };
const AGENT = 'kube-bot';

let cluster: EksApiServer;
/** An older API server that speaks only v4.channel.k8s.io for exec. */
let legacy: EksApiServer;
let gw: TestGateway;
let agentToken: string;
let work: string;
let savedDispatcher: Dispatcher | undefined;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kubectl(kubeconfig: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'kubectl',
      ['--request-timeout=20s', ...args],
      {
        env: { PATH: process.env.PATH ?? '', HOME: work, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(work, 'cache') },
        timeout: opts.timeoutMs ?? 30_000,
      },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code as number | null) ?? null : 0;
        if (err && typeof (err as { code?: unknown }).code !== 'number') return reject(new Error(`kubectl ${args.join(' ')} did not finish: ${err.message}\n${stderr}`));
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

let grants = 0;
async function grantKubeconfig(access: string, ttl = '5m', scope?: Record<string, unknown>, resource = 'prod'): Promise<{ id: string; path: string; connect: Record<string, unknown>; secret: string }> {
  const res = await gw.requestGrant(agentToken, { resource, access, ttl, task: `kubectl e2e ${access}`, ...(scope ? { scope } : {}) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const connect = res.body.connect!;
  const path = join(work, `kubeconfig-${++grants}`);
  writeFileSync(path, String(connect.kubeconfig), { mode: 0o600 });
  return { id: res.body.id!, path, connect, secret: res.body.secret! };
}

const records = (): AuditRecord[] => gw.auditRecords();
const k8sRecords = (grant: string, type = 'k8s.request'): AuditRecord[] => records().filter((r) => r.type === type && r.grant === grant);

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'airlock-eks-e2e-'));
  cluster = await startEksApiServer({ cluster: 'prod', keys: KEYS, tickMs: 150 });
  legacy = await startEksApiServer({ cluster: 'legacy', keys: KEYS, execProtocols: ['v4.channel.k8s.io'] });
  gw = await startTestGateway({
    env: ownAwsIdentityEnv(KEYS),
    config: {
      gateway: { http: { listen: '127.0.0.1:0', tls: 'self-signed' } },
      aws: { region: 'us-east-1' },
      resources: {
        prod: {
          type: 'eks',
          cluster: 'prod',
          region: 'us-east-1',
          endpoint: cluster.url,
          caFile: cluster.caFile,
          access: {
            read: { verbs: ['get', 'list', 'watch'], resources: ['pods', 'pods/log'], namespaces: ['default'] },
            ops: { verbs: ['get', 'list', 'watch', 'create'], resources: ['pods', 'pods/log', 'pods/exec'], namespaces: ['default'] },
          },
        },
        // The same API server under another cluster name: airlock's tokens for "staging"
        // carry x-k8s-aws-id=staging, which the "prod" server must refuse.
        staging: {
          type: 'eks',
          cluster: 'staging',
          region: 'us-east-1',
          endpoint: cluster.url,
          caFile: cluster.caFile,
          access: { read: { verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] } },
        },
        legacy: {
          type: 'eks',
          cluster: 'legacy',
          region: 'us-east-1',
          endpoint: legacy.url,
          caFile: legacy.caFile,
          access: { ops: { verbs: ['get', 'create'], resources: ['pods', 'pods/exec'], namespaces: ['default'] } },
        },
      },
      policies: [{ agents: [`local:${AGENT}`], resources: ['prod', 'staging', 'legacy'], access: ['read', 'ops'], maxTtl: '15m' }],
      audit: { durability: 'strict' },
    },
  });
  agentToken = await gw.tokenFor(AGENT);
  // The control API is on the same TLS listener: let this process's fetch trust its CA.
  savedDispatcher = getGlobalDispatcher();
  setGlobalDispatcher(new Agent({ connect: { ca: readFileSync(join(gw.dataDir, 'tls', 'self-signed.crt'), 'utf8') } }));
});

after(async () => {
  if (savedDispatcher) setGlobalDispatcher(savedDispatcher);
  await gw?.close();
  await cluster?.close();
  await legacy?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('kubectl through airlock', () => {
  test('the grant carries a kubeconfig for airlock over https with its CA and the grant as bearer', async () => {
    const { id, connect } = await grantKubeconfig('read');
    const kc = parseYaml(String(connect.kubeconfig)) as { clusters: Array<{ cluster: Record<string, string> }>; users: Array<{ user: { token: string } }> };
    assert.match(kc.clusters[0]!.cluster.server!, /^https:\/\/127\.0\.0\.1:\d+\/eks\/prod$/);
    assert.match(Buffer.from(kc.clusters[0]!.cluster['certificate-authority-data']!, 'base64').toString(), /BEGIN CERTIFICATE/);
    assert.ok(kc.users[0]!.user.token.startsWith(`${id}.`));
    const env = connect.env as Record<string, string>;
    assert.equal(Buffer.from(env.KUBECONFIG_DATA!, 'base64').toString(), connect.kubeconfig);
  });

  test('get pods in scope works, and the cluster saw only valid EKS tokens and no agent credential', async () => {
    const { id, path } = await grantKubeconfig('read');
    const before = cluster.seen.length;
    const r = await kubectl(path, ['get', 'pods']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /web-1\s+1\/1\s+Running/);
    assert.match(r.stdout, /web-2/);
    const seen = cluster.seen.slice(before);
    assert.ok(seen.some((s) => s.path === '/api/v1/namespaces/default/pods'), JSON.stringify(seen));
    for (const s of seen) {
      assert.ok(s.authorized, `cluster refused airlock's token: ${s.authError}`);
      assert.ok(!s.headerNames.some((h) => h.startsWith('impersonate-') || h === 'cookie'), s.headerNames.join(','));
    }
    const list = k8sRecords(id).find((rec) => rec.data?.['resource'] === 'pods' && rec.data?.['verb'] === 'list');
    assert.ok(list, 'k8s.request for the list');
    assert.equal(list.outcome, 'ok');
    assert.equal(list.data?.['namespace'], 'default');
    const resp = k8sRecords(id, 'k8s.response').find((rec) => rec.data?.['resource'] === 'pods');
    assert.equal(resp?.data?.['status'], 200);
    assert.equal(typeof resp?.data?.['ms'], 'number');
  });

  test('another namespace, another verb, cluster-scoped resources and --as are refused before the cluster', async () => {
    const { id, path } = await grantKubeconfig('read');
    const before = cluster.seen.length;

    const ns = await kubectl(path, ['get', 'pods', '-n', 'kube-system']);
    assert.notEqual(ns.code, 0);
    assert.match(ns.stderr, /forbidden/);
    assert.match(ns.stderr, /namespace "kube-system"/);

    const del = await kubectl(path, ['delete', 'pod', 'web-1', '--wait=false']);
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /forbidden.*cannot delete resource "pods"/);

    const nodes = await kubectl(path, ['get', 'nodes']);
    assert.notEqual(nodes.code, 0);
    assert.match(nodes.stderr, /resource "nodes"/);

    const allNamespaces = await kubectl(path, ['get', 'pods', '--all-namespaces']);
    assert.notEqual(allNamespaces.code, 0);
    assert.match(allNamespaces.stderr, /cluster-scoped/);

    const nsList = await kubectl(path, ['get', 'namespaces']);
    assert.notEqual(nsList.code, 0);
    assert.match(nsList.stderr, /forbidden/);

    const secrets = await kubectl(path, ['get', 'secrets']);
    assert.notEqual(secrets.code, 0);
    assert.match(secrets.stderr, /resource "secrets"/);

    const as = await kubectl(path, ['get', 'pods', '--as=system:admin']);
    assert.notEqual(as.code, 0);
    assert.match(as.stderr, /impersonation is not allowed/);

    const reached = cluster.seen.slice(before);
    assert.ok(!reached.some((s) => s.path.includes('kube-system') || s.method === 'DELETE' || s.path.includes('/nodes') || s.path.includes('/secrets') || s.path === '/api/v1/namespaces'), JSON.stringify(reached.map((s) => `${s.method} ${s.path}`)));
    assert.ok(!reached.some((s) => s.headerNames.some((h) => h.startsWith('impersonate-'))));

    const denied = k8sRecords(id).filter((r) => r.outcome === 'denied');
    assert.ok(denied.some((r) => r.data?.['namespace'] === 'kube-system' && r.data?.['status'] === 403));
    assert.ok(denied.some((r) => r.data?.['verb'] === 'delete'));
    assert.ok(denied.some((r) => r.data?.['resource'] === 'nodes'));
    const violations = records().filter((r) => r.type === 'policy.violation' && r.grant === id);
    assert.ok(violations.some((r) => Array.isArray(r.data?.['impersonation'])), 'impersonation recorded as a violation');
    assert.ok(violations.length >= 6, `violations: ${violations.length}`);
  });

  test('logs work in scope; exec needs pods/exec', async () => {
    const { path } = await grantKubeconfig('read');
    const logs = await kubectl(path, ['logs', 'web-1']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, 'log line 1 from web-1\nlog line 2 from web-1\n');
    const exec = await kubectl(path, ['exec', 'web-1', '--', 'echo', 'hi']);
    assert.notEqual(exec.code, 0);
    assert.match(exec.stderr, /forbidden.*pods\/exec/);
  });

  test('exec -- echo hi runs over the WebSocket relay and is recorded as a session', async () => {
    const { id, path } = await grantKubeconfig('ops');
    const r = await kubectl(path, ['exec', 'web-1', '--', 'echo', 'hi']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
    const upgrade = cluster.seen.filter((s) => s.websocket && s.path.endsWith('/pods/web-1/exec')).at(-1);
    assert.equal(upgrade?.protocol, 'v5.channel.k8s.io');
    const execRecord = k8sRecords(id).find((x) => x.data?.['subresource'] === 'exec');
    assert.equal(execRecord?.data?.['command'], 'echo hi');
    assert.equal(execRecord?.data?.['verb'], 'create');
    await eventually(() => records().some((x) => x.type === 'session.closed' && x.grant === id), 5_000, 'session.closed');
    const out = records().filter((x) => x.type === 'k8s.exec.io' && x.grant === id);
    assert.ok(out.some((x) => x.data?.['stdout'] === 'hi\n'), JSON.stringify(out));
    const closed = records().find((x) => x.type === 'session.closed' && x.grant === id)!;
    assert.deepEqual((closed.data?.['exit'] as Record<string, unknown>)?.['status'], 'Success');
  });

  test('exec -i relays stdin, recorded before it reaches the pod', async () => {
    const { id, path } = await grantKubeconfig('ops');
    const r = await kubectl(path, ['exec', '-i', 'web-1', '--', 'cat'], { input: 'hello from stdin\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from stdin\n');
    const io = records().filter((x) => x.type === 'k8s.exec.io' && x.grant === id);
    assert.ok(io.some((x) => x.data?.['direction'] === 'in' && x.data?.['stdin'] === 'hello from stdin\n'), JSON.stringify(io));
  });

  test('get pods -w streams events and is cut at grant expiry', async () => {
    const { id, path } = await grantKubeconfig('read', '4s');
    const started = Date.now();
    const r = await kubectl(path, ['get', 'pods', '-w'], { timeoutMs: 30_000 });
    const elapsed = Date.now() - started;
    // kubectl ends a watch the server closed; the last event is our Status, printed as a row.
    assert.ok(elapsed >= 3_000, `the watch lasted until expiry (${elapsed} ms)`);
    assert.ok((r.stdout.match(/web-1/g) ?? []).length >= 3, `watch events arrived:\n${r.stdout}`);
    assert.match(r.stdout, /Unauthorized\s+airlock grant \S+ expired/);
    await eventually(() => cluster.openStreams() === 0 || undefined, 5_000, 'the upstream watch closed');
    // `get -w` lists first (a session of its own, ended by the cluster), then watches.
    const watch = records().find((x) => x.type === 'session.opened' && x.grant === id && x.data?.['stream'] === 'watch');
    const closed = records().find((x) => x.type === 'session.closed' && x.session === watch?.session);
    assert.equal(closed?.data?.['reason'], 'expired');
    const after = await kubectl(path, ['get', 'pods']);
    assert.notEqual(after.code, 0);
    assert.match(after.stderr, /Unauthorized|must be logged in/);
    assert.ok(records().some((x) => x.type === 'auth.failed' && (x.data?.['claimedId'] === id)));
  });

  test('revocation ends logs -f within a second', async () => {
    const { id, path } = await grantKubeconfig('read');
    const child = spawn('kubectl', ['logs', '-f', 'web-1'], { env: { PATH: process.env.PATH ?? '', HOME: work, KUBECONFIG: path, KUBECACHEDIR: join(work, 'cache') } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await eventually(() => (stdout.includes('log line 4') ? true : undefined), 10_000, 'follow lines');
      const admin = await gw.adminToken();
      const t0 = Date.now();
      const rev = await gw.revoke(id, admin);
      assert.equal(rev.status, 200, JSON.stringify(rev.body));
      await Promise.race([exited, new Promise((_, rej) => setTimeout(() => rej(new Error('kubectl logs -f still running 3s after revocation')), 3_000))]);
      assert.ok(Date.now() - t0 < 3_000);
      assert.match(stdout, /revoked/);
      await eventually(() => cluster.openStreams() === 0 || undefined, 5_000, 'the upstream log stream closed');
      assert.equal(records().find((x) => x.type === 'session.closed' && x.grant === id)?.data?.['reason'], 'revoked');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a wrong or missing token is 401 with an auth.failed record and never reaches the cluster', async () => {
    const { id, path, connect } = await grantKubeconfig('read');
    const bad = String(connect.kubeconfig).replace(new RegExp(`${id}\\.[A-Za-z0-9_-]+`), `${id}.not-the-secret`);
    const badPath = join(work, 'kubeconfig-bad');
    writeFileSync(badPath, bad);
    const before = cluster.seen.length;
    const r = await kubectl(badPath, ['get', 'pods']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unauthorized|must be logged in/);
    assert.equal(cluster.seen.length, before);
    const failed = records().filter((x) => x.type === 'auth.failed' && x.data?.['claimedId'] === id);
    assert.ok(failed.length > 0);
    assert.ok(!JSON.stringify(failed).includes('not-the-secret'), 'the presented secret is not recorded');
    void path;
  });

  test('a client offering v5 and v4 to a v4-only cluster: both legs agree on v4', async () => {
    // kubectl 1.32 offers only v5 over WebSocket; other clients offer several, and the
    // gateway must answer with the one the cluster chose, not the client's first.
    const { id, secret } = await grantKubeconfig('ops', '5m', undefined, 'legacy');
    const url = `${gw.url.replace(/^https/, 'wss')}/eks/legacy/api/v1/namespaces/default/pods/web-1/exec?command=echo&command=from&command=v4&stdout=true`;
    const ws = new WebSocket(url, ['v5.channel.k8s.io', 'v4.channel.k8s.io'], { ca: readFileSync(join(gw.dataDir, 'tls', 'self-signed.crt')), headers: { authorization: `Bearer ${id}.${secret}` } });
    const frames: Buffer[] = [];
    ws.on('message', (d: Buffer) => frames.push(d));
    await new Promise<void>((resolve, reject) => {
      ws.once('close', () => resolve());
      ws.once('error', reject);
    });
    assert.equal(ws.protocol, 'v4.channel.k8s.io');
    assert.equal(legacy.seen.filter((x) => x.websocket).at(-1)?.protocol, 'v4.channel.k8s.io');
    const stdout = frames.filter((f) => f[0] === 1).map((f) => f.subarray(1).toString()).join('');
    assert.equal(stdout, 'from v4\n');
    const status = frames.find((f) => f[0] === 3);
    assert.equal(JSON.parse(status!.subarray(1).toString()).status, 'Success');
    const resp = k8sRecords(id, 'k8s.response').find((x) => x.data?.['status'] === 101);
    assert.equal(resp?.data?.['protocol'], 'v4.channel.k8s.io');
  });

  test('kubectl (v5 only) against a v4-only cluster gets a clear refusal, not a hang', async () => {
    const { path } = await grantKubeconfig('ops', '5m', undefined, 'legacy');
    const r = await kubectl(path, ['exec', 'web-1', '--', 'echo', 'hi']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /none of the offered subprotocols/);
  });

  test("a non-zero exit in the pod is kubectl's exit code", async () => {
    const { path } = await grantKubeconfig('ops');
    const r = await kubectl(path, ['exec', 'web-1', '--', 'no-such-command']);
    assert.equal(r.code, 127, r.stderr);
    assert.match(r.stderr, /no-such-command: command not found/);
  });

  test('revocation cuts a live exec session and tells kubectl why', async () => {
    const { id, path } = await grantKubeconfig('ops');
    const child = spawn('kubectl', ['exec', '-i', 'web-1', '--', 'cat'], { env: { PATH: process.env.PATH ?? '', HOME: work, KUBECONFIG: path, KUBECACHEDIR: join(work, 'cache') } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      child.stdin.write('first line\n');
      await eventually(() => (stdout.includes('first line') ? true : undefined), 10_000, 'echoed stdin');
      const rev = await gw.revoke(id, await gw.adminToken());
      assert.equal(rev.status, 200);
      const code = await Promise.race([exited, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('kubectl exec still running 3s after revocation')), 3_000))]);
      assert.notEqual(code, 0);
      assert.match(stderr, /revoked/);
      assert.equal(records().find((x) => x.type === 'session.closed' && x.grant === id)?.data?.['reason'], 'revoked');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('raw HTTP: impersonation headers, ambiguous paths, other paths and other resources are refused', async () => {
    const { id, secret } = await grantKubeconfig('read');
    const before = cluster.seen.length;
    const call = (path: string, headers: Record<string, string> = {}, bearer = `${id}.${secret}`) =>
      fetch(`${gw.url}/eks/${path}`, { headers: { authorization: `Bearer ${bearer}`, ...headers } });

    const imp = await call('prod/api/v1/namespaces/default/pods', { 'Impersonate-Uid': '0' });
    assert.equal(imp.status, 403);
    const impBody = (await imp.json()) as { kind: string; message: string };
    assert.equal(impBody.kind, 'Status');
    assert.match(impBody.message, /impersonate-uid/);

    const encoded = await call('prod/api/v1/namespaces/default/pods%2Fweb-1');
    assert.equal(encoded.status, 400);
    assert.match(((await encoded.json()) as { message: string }).message, /ambiguous path segment/);

    const metrics = await call('prod/metrics');
    assert.equal(metrics.status, 403);
    assert.match(((await metrics.json()) as { message: string }).message, /non-resource URL "\/metrics"/);

    const other = await call('staging/api/v1/namespaces/default/pods');
    assert.equal(other.status, 401, 'a prod grant is not a staging grant');
    const otherBody = await other.text();
    assert.doesNotMatch(otherBody, /prod/, 'the answer names no resource');

    const unknown = await call('nope/api');
    assert.equal(unknown.status, 401, 'an unknown resource answers like a credential that does not fit');
    assert.equal(await unknown.text(), otherBody);

    assert.equal(cluster.seen.length, before, 'none of these reached the cluster');
    const denied = k8sRecords(id).filter((r) => r.outcome === 'denied');
    assert.ok(denied.some((r) => r.data?.['path'] === '/api/v1/namespaces/default/pods%2Fweb-1'));
    assert.ok(denied.some((r) => r.data?.['path'] === '/metrics'));
  });

  test("a token for another cluster is refused by the cluster; kubectl is told it is airlock's identity, not its grant", async () => {
    const { id, path } = await grantKubeconfig('read', '5m', undefined, 'staging');
    const before = cluster.seen.length;
    const r = await kubectl(path, ['get', 'pods']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /did not accept airlock's AWS identity/);
    const reached = cluster.seen.slice(before);
    assert.ok(reached.length > 0 && reached.every((s) => !s.authorized && /SignatureDoesNotMatch/.test(s.authError ?? '')), JSON.stringify(reached));
    assert.ok(k8sRecords(id, 'k8s.response').some((x) => x.outcome === 'error' && x.data?.['status'] === 502));
  });

  test('every request the cluster received is in the audit, and the audit verifies', async () => {
    const okFor = (...resources: string[]) => records().filter((r) => r.type === 'k8s.request' && r.outcome === 'ok' && resources.includes(r.resource ?? ''));
    const sorted = (list: string[]) => [...list].sort();
    // prod and staging share one API server; legacy has its own.
    for (const [server, names] of [[cluster, ['prod', 'staging']], [legacy, ['legacy']]] as const) {
      const ok = okFor(...names);
      assert.equal(ok.length, server.seen.length, `one ok k8s.request per request that reached ${names.join('/')}`);
      assert.deepEqual(sorted(ok.map((r) => String(r.data?.['path']))), sorted(server.seen.map((x) => x.path)), 'the records name exactly the paths the cluster served');
    }
    assert.ok(cluster.seen.length > 20, `a real workload reached the cluster (${cluster.seen.length} requests)`);
    const files = gw.auditFiles();
    const result = await verifyAuditFiles(files, { publicKeys: [gw.gateway.identity.key.publicJwk], gatewayId: gw.gateway.identity.gatewayId });
    assert.equal(result.ok, true, JSON.stringify(result.failure));
    assert.ok(result.records >= okFor('prod').length);
    const text = files.map((f) => JSON.stringify(f)).join('');
    void text;
    const all = JSON.stringify(records());
    assert.ok(!all.includes(KEYS.secretAccessKey), 'no AWS secret in the audit');
    assert.ok(!/k8s-aws-v1\./.test(all), 'no EKS token in the audit');
  });
});
