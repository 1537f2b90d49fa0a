/**
 * The EKS front in-process with a small fake PluginContext (grants, sessions, an audit
 * recorder whose failures we control) against the stand-in API server: the paths the
 * kubectl test cannot reach through the gateway — the audit failing (fail closed), SPDY
 * upgrades, and backpressure on an endless log stream.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Hono } from 'hono';
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { AuditEventInput, AuditReceipt, CloseReason, Grant, PluginContext, Session, SessionCloser, SessionOptions } from '../../core/plugin.ts';
import { AuditExchangeImpl } from '../../core/audit/exchange.ts';
import { eksResourceSchema, type EksResource, type EksScope } from '../../plugins/eks/config.ts';
import { eksApp } from '../../plugins/eks/app.ts';
import { clusterUpstreams } from '../../plugins/eks/forward.ts';
import { resolveEksScope } from '../../plugins/eks/scope.ts';
import { makeTestCa, startEksApiServer, type EksApiServer } from '../stand-ins/eks-api-server.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeAws } from './fake-aws.ts';

const KEYS = { accessKeyId: 'AKIAEKSAPPTEST000001', secretAccessKey: 'eks-app-test-secret-000000000000000000' };
const TOKEN = 'AGTESTGRANT000000000.the-secret';
const IMPOSTOR_TOKEN = 'AGTESTGRANT000000001.other-secret';
let otherCaDir: string;

let cluster: EksApiServer;
let app: Hono;
let closePlugin: () => Promise<void>;
const events: AuditEventInput[] = [];
let auditMode: 'ok' | 'spool-fails' | 'durable-fails' = 'ok';

function receipt(): AuditReceipt {
  const fail = Promise.reject(new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'spool full'));
  fail.catch(() => {});
  const ok = Promise.resolve();
  return {
    seq: events.length,
    spooled: auditMode === 'spool-fails' ? fail : ok,
    durable: auditMode === 'ok' ? ok : fail,
  };
}

before(async () => {
  cluster = await startEksApiServer({ cluster: 'prod', keys: KEYS });
  const resource = eksResourceSchema.parse({
    type: 'eks',
    cluster: 'prod',
    region: 'us-east-1',
    endpoint: cluster.url,
    caFile: cluster.caFile,
    access: { ops: { verbs: ['get', 'list', 'watch', 'create'], resources: ['pods', 'pods/log', 'pods/exec'], namespaces: ['default'] } },
  });
  const grant: Grant<EksScope> = {
    id: 'AGTESTGRANT000000000',
    agent: 'local:unit',
    resource: 'prod',
    resourceType: 'eks',
    access: 'ops',
    scope: resolveEksScope(resource.access['ops']!, undefined),
    task: 'unit test',
    status: 'active',
    createdAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    ttlMs: 3_600_000,
  };
  // The same server, but airlock is told to trust another CA: it must not talk to it.
  otherCaDir = mkdtempSync(join(tmpdir(), 'eks-other-ca-'));
  makeTestCa(otherCaDir);
  const impostor = eksResourceSchema.parse({ ...resource, caFile: join(otherCaDir, 'ca.pem') });
  const ctx: PluginContext<EksResource, EksScope> = {
    type: 'eks',
    gateway: { publicUrl: 'https://127.0.0.1:1', httpCaPem: undefined, dataDir: '/tmp', gatewayId: 'gw-unit', tls: async () => ({ certPem: '' }) },
    resources: new Map([
      ['prod', resource],
      ['impostor', impostor],
    ]),
    listener: undefined,
    grants: {
      bearer: (token) => {
        if (token === IMPOSTOR_TOKEN) return { ...grant, resource: 'impostor' };
        if (token !== TOKEN) throw new AirlockError(ErrorCodes.BAD_CREDENTIAL, 'grant credential does not match');
        return grant;
      },
      scram: () => {
        throw new Error('unused');
      },
      decoyScram: () => {
        throw new Error('unused');
      },
      sigv4SigningKey: () => {
        throw new Error('unused');
      },
      requireActive: () => grant,
      get: () => grant,
      listActive: () => [grant],
    },
    sessions: {
      open: (g: Grant<EksScope>, opts: SessionOptions): Session<EksScope> => {
        if (auditMode === 'spool-fails') throw new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'airlock cannot record this request: audit unavailable');
        const closers: SessionCloser[] = [];
        const abort = new AbortController();
        const session: Session<EksScope> = {
          id: `s_${events.length}`,
          grant: g,
          openedAt: Date.now(),
          closed: false,
          cut: undefined,
          signal: abort.signal,
          attachCloser: (fn) => void closers.push(fn),
          record: (type, data, outcome) => (events.push({ type, grant: g, session: session.id, data, outcome }), receipt()),
          end: (reason, data) => void events.push({ type: 'session.closed', grant: g, data: { reason, ...data }, outcome: 'ok' }),
        };
        if (opts.onClose) closers.push((reason: CloseReason, message: string) => void opts.onClose?.(reason, message));
        return session;
      },
    },
    audit: {
      record: (e) => (events.push(e), receipt()),
      authFailed: (e) => (events.push({ type: 'auth.failed', data: { ...e }, outcome: 'denied' }), receipt()),
      authRefused: (e) => (events.push({ type: 'auth.failed', data: { ...e }, outcome: 'denied' }), { limited: false, receipt: receipt() }),
      exchange: (on, event) => {
        const sessionId = 'openedAt' in on ? on.id : undefined;
        const g = 'openedAt' in on ? on.grant : on;
        return new AuditExchangeImpl((type, data, outcome) => (events.push({ type, grant: g, session: sessionId, data, outcome }), receipt()), event);
      },
      whenSpooled: (fn) => fn(undefined),
    },
    aws: fakeAws(KEYS),
    // The EKS plugin keeps no shared state: any use of it fails this test.
    state: {
      get: () => Promise.reject(new Error('unused')),
      put: () => Promise.reject(new Error('unused')),
      putIfAbsent: () => Promise.reject(new Error('unused')),
      delete: () => Promise.reject(new Error('unused')),
      list: () => Promise.reject(new Error('unused')),
    },
    log: pino({ level: 'silent' }),
    mount: (_prefix, sub) => {
      app = sub;
    },
  };
  const upstreams = clusterUpstreams(ctx);
  app = eksApp(ctx, upstreams);
  closePlugin = () => upstreams.close();
});

beforeEach(() => {
  auditMode = 'ok';
  events.length = 0;
});

after(async () => {
  await closePlugin?.();
  await cluster?.close();
  if (otherCaDir) rmSync(otherCaDir, { recursive: true, force: true });
});

const call = (path: string, init: RequestInit = {}) =>
  app.request(`https://airlock.test/eks/prod${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) } });

test('in scope: forwarded, recorded before and after', async () => {
  const res = await call('/api/v1/namespaces/default/pods/web-1');
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { metadata: { name: string } }).metadata.name, 'web-1');
  assert.deepEqual(
    events.map((e) => e.type),
    ['k8s.request', 'k8s.response'],
  );
});

test('when the audit spool cannot take the record, nothing reaches the cluster (503)', async () => {
  auditMode = 'spool-fails';
  const before = cluster.seen.length;
  const res = await call('/api/v1/namespaces/default/pods');
  assert.equal(res.status, 503);
  assert.match(await res.text(), /audit/);
  const watch = await call('/api/v1/namespaces/default/pods?watch=1');
  assert.equal(watch.status, 503);
  assert.equal(cluster.seen.length, before);
});

test('when the record cannot be made durable, the cluster answer is withheld (503)', async () => {
  auditMode = 'durable-fails';
  const res = await call('/api/v1/namespaces/default/pods');
  assert.equal(res.status, 503);
  const text = await res.text();
  assert.match(text, /cannot record this request: audit unavailable/, "the one AUDIT_UNAVAILABLE message");
  assert.doesNotMatch(text, /web-1/);
});

test('a server that cannot prove it is the cluster (other CA) never gets a request or a token', async () => {
  const before = cluster.seen.length;
  const res = await app.request('https://airlock.test/eks/impostor/api/v1/namespaces/default/pods', { headers: { authorization: `Bearer ${IMPOSTOR_TOKEN}` } });
  assert.equal(res.status, 502);
  assert.match(await res.text(), /cannot reach the cluster.*(certificate|self.signed|issuer)/i);
  assert.equal(cluster.seen.length, before);
  assert.ok(events.some((e) => e.type === 'k8s.response' && e.outcome === 'error' && e.data?.['status'] === 502));
});

test('SPDY upgrades are refused with a clear message and never forwarded', async () => {
  const before = cluster.seen.length;
  const res = await call('/api/v1/namespaces/default/pods/web-1/exec?command=ls&stdout=true', {
    method: 'POST',
    headers: { connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': 'v4.channel.k8s.io' },
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { kind: string; message: string };
  assert.equal(body.kind, 'Status');
  assert.match(body.message, /spdy\/3\.1 upgrades are refused; airlock relays exec, attach and port-forward over WebSocket only/);
  assert.equal(cluster.seen.length, before);
  assert.ok(events.some((e) => e.type === 'k8s.request' && e.outcome === 'denied' && e.data?.['subresource'] === 'exec'));
});

test('any truthy follow value makes a log stream a session (so expiry can end it)', async () => {
  const res = await call('/api/v1/namespaces/default/pods/web-1/log?follow=yes');
  assert.equal(res.status, 200);
  const req = events.find((e) => e.type === 'k8s.request');
  assert.ok(req?.session, 'recorded inside a session');
  await res.body?.cancel();
});

test('a query with ";" is refused as ambiguous', async () => {
  const before = cluster.seen.length;
  const res = await call('/api/v1/namespaces/default/pods?watch=false;watch=true');
  assert.equal(res.status, 400);
  assert.equal(cluster.seen.length, before);
});

test('a slow reader holds back an endless log stream (backpressure reaches the cluster)', async (t) => {
  const res = await call('/api/v1/namespaces/default/pods/flood/log?follow=true');
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  // Read nothing for a while: the cluster's writes must stall at a bounded amount.
  await new Promise((r) => setTimeout(r, 1_500));
  const stalled = cluster.floodBytes();
  await new Promise((r) => setTimeout(r, 500));
  const stillStalled = cluster.floodBytes();
  assert.ok(stillStalled < 64 * 1024 * 1024, `the cluster wrote ${stillStalled} bytes nobody read`);
  assert.equal(stillStalled, stalled, 'no progress while the reader waits');
  t.diagnostic(`the cluster stalled after writing ${stalled} bytes to an idle reader`);
  // Reading again lets it flow.
  let read = 0;
  while (read < 8 * 1024 * 1024) {
    const { value, done } = await reader.read();
    if (done) break;
    read += value.length;
  }
  assert.ok(cluster.floodBytes() > stalled, 'the stream moves when the reader reads');
  await reader.cancel();
  const closedAt = Date.now();
  while (cluster.openStreams() > 0 && Date.now() - closedAt < 5_000) await new Promise((r) => setTimeout(r, 20));
  assert.equal(cluster.openStreams(), 0, 'cancelling the client stream closes the upstream one');
  assert.ok(events.some((e) => e.type === 'session.closed' && e.data?.['endedBy'] === 'client'));
});
