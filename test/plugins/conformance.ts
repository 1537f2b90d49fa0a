/**
 * The plugin conformance suite: what every resource plugin must do, whatever its protocol.
 * Modelled on Hono's router `common.case.test.ts`: one function runs the same cases against
 * an adapter per implementation (test/plugins/<type>.test.ts), and each adapter states in
 * `skip` which cases do not apply to it and why (a skipped case is listed by name with its
 * reason in the test output; it is never silently dropped).
 *
 * Cases:
 *  - a scope never widens (a request for more than the access level is refused, recorded);
 *  - an unknown grant id is indistinguishable from a wrong secret, and both record `auth.failed`;
 *  - the request record is in the spool before anything reaches the upstream;
 *  - a revoke closes a live session within 1 s and records `session.closed`;
 *  - every ErrorCode is mapped by the plugin's wire.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ERROR_CODES, type ErrorCode } from '../../core/errors.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import type { TestGateway } from '../harness/gateway.ts';

export const CASES = ['scope never widens', 'unknown grant reads like a wrong secret', 'request record spooled before upstream', 'revoke closes a live session', 'every ErrorCode is mapped'] as const;
export type CaseName = (typeof CASES)[number];

export interface IssuedGrant {
  id: string;
  secret: string;
  connect: Record<string, unknown> & { env: Record<string, string> };
}

export interface PluginUnderTest {
  gw: TestGateway;
  agentToken: string;
  /** An in-policy grant request body (resource, access, ttl, task). */
  grantRequest: Record<string, unknown>;
  /** A scope wider than the access level (or, for a plugin without scopes, any scope). */
  widenedScope: Record<string, unknown>;
  /**
   * One request with these credentials (grant id, secret) through the ordinary client; the
   * refusal as the client sees it, with the claimed id replaced by `<id>` (so two refusals
   * compare equal when they are indistinguishable).
   */
  refusalFor(id: string, secret: string): Promise<string>;
  /**
   * Set up the client for one allowed request (connect, log in) and return the request
   * itself, which the suite runs while it watches the upstream; `done` releases the client.
   */
  prepareRequest(grant: IssuedGrant, marker: string): Promise<{ run(): Promise<void>; done(): Promise<void> }>;
  /** The request record of `allowedRequest` (to look for in the spool). */
  isRequestRecord(r: AuditRecord, grant: IssuedGrant, marker: string): boolean;
  /** The upstream watch the adapter put in front of the upstream. */
  watch: UpstreamWatch;
  /** Open a live session (connection, stream); `closed` resolves with what the client saw. */
  openSession?(grant: IssuedGrant): Promise<{ closed: Promise<string> }>;
  /** The plugin's wire error for a code (SQLSTATE, AWS `__type`, Kubernetes reason + status). */
  wireError(code: ErrorCode): string;
  /** What the wire answers for an unmapped failure (must differ for every code but INTERNAL). */
  internalWireError: string;
  close(): Promise<void>;
}

export interface PluginAdapter {
  type: string;
  /** Cases that do not apply, each with the reason. */
  skip?: Partial<Record<CaseName, string>>;
  start(): Promise<PluginUnderTest>;
}

/**
 * Watches what reaches an upstream. While armed, every time the upstream receives bytes
 * (or a request), `check` is evaluated at that very moment and its result kept.
 */
export class UpstreamWatch {
  private armed: (() => boolean) | undefined;
  readonly results: boolean[] = [];

  arm(check: () => boolean): void {
    this.results.length = 0;
    this.armed = check;
  }

  disarm(): boolean[] {
    this.armed = undefined;
    return [...this.results];
  }

  /** Call when the upstream receives something. */
  saw(): void {
    if (this.armed) this.results.push(this.armed());
  }
}

/** A TCP relay in front of an upstream that tells the watch whenever bytes flow towards it. */
export async function watchingRelay(target: { host: string; port: number }, watch: UpstreamWatch): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => {
      watch.saw();
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function issue(p: PluginUnderTest, extra: Record<string, unknown> = {}): Promise<IssuedGrant> {
  const res = await p.gw.requestGrant(p.agentToken, { ...p.grantRequest, ...extra });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id: res.body.id!, secret: res.body.secret!, connect: res.body.connect! };
}

/** A grant-shaped id no gateway issued. */
function unknownGrantId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return `AG${[...randomBytes(18)].map((b) => alphabet[b & 31]).join('')}`;
}

async function eventually<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function runPluginConformance(adapter: PluginAdapter): void {
  describe(`plugin conformance: ${adapter.type}`, () => {
    let p: PluginUnderTest;
    before(async () => {
      p = await adapter.start();
    });
    after(async () => p?.close());

    const skipped = (name: CaseName): string | undefined => adapter.skip?.[name];
    // A case that does not apply is reported as skipped with its reason (the adapter's list).
    const test = (name: CaseName, fn: () => Promise<void>) => it(name, { skip: skipped(name) ?? false }, fn);

    test('scope never widens', async () => {
      const res = await p.gw.requestGrant(p.agentToken, { ...p.grantRequest, scope: p.widenedScope });
      assert.ok(res.status === 403 || res.status === 400, `a wider scope was answered ${res.status}`);
      assert.equal(res.body.id, undefined, 'no grant was issued');
      const denied = await eventually(() => p.gw.auditRecords().find((r) => r.type === 'grant.denied' && r.data?.['rule'] === 'scope'), 3000, `grant.denied (rule scope) after ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(denied.outcome, 'denied');
    });

    test('unknown grant reads like a wrong secret', async () => {
      const g = await issue(p);
      const before = p.gw.auditRecords().at(-1)?.seq ?? 0;
      const wrongSecret = await p.refusalFor(g.id, `${g.secret.slice(0, -4)}XXXX`);
      const unknown = await p.refusalFor(unknownGrantId(), g.secret);
      assert.equal(unknown, wrongSecret, 'the client cannot tell an unknown grant from a wrong secret');
      const failures = await eventually(() => {
        const f = p.gw.auditRecords().filter((r) => r.seq > before && r.type === 'auth.failed');
        return f.length >= 2 ? f : undefined;
      }, 3000, 'two auth.failed records');
      assert.ok(failures.some((r) => r.data?.['claimedId'] === g.id), 'the wrong secret is recorded against the claimed grant');
      assert.ok(!JSON.stringify(p.gw.auditRecords()).includes(g.secret), 'no secret in the audit');
    });

    test('request record spooled before upstream', async () => {
      const g = await issue(p);
      const marker = `m${randomBytes(4).toString('hex')}`;
      const request = await p.prepareRequest(g, marker);
      p.watch.arm(() => p.gw.auditRecords().some((r) => p.isRequestRecord(r, g, marker)));
      try {
        await request.run();
      } finally {
        const seen = p.watch.disarm();
        await request.done();
        assert.ok(seen.length > 0, 'the request reached the upstream');
        assert.ok(seen.every(Boolean), `the upstream received bytes before the request record was spooled (${JSON.stringify(seen)})`);
      }
    });

    test('revoke closes a live session', async () => {
      assert.ok(p.openSession, 'the adapter opens sessions');
      const g = await issue(p);
      const session = await p.openSession(g);
      const t0 = Date.now();
      const revoked = await p.gw.revoke(g.id, p.agentToken);
      assert.equal(revoked.status, 200);
      await session.closed;
      const ms = Date.now() - t0;
      assert.ok(ms < 1000, `closed after ${ms} ms`);
      const closed = await eventually(() => p.gw.auditRecords().find((r) => r.type === 'session.closed' && r.grant === g.id), 2000, 'session.closed');
      assert.equal(closed.data?.['reason'], 'revoked');
    });

    test('every ErrorCode is mapped', async () => {
      for (const code of ERROR_CODES) {
        const wire = p.wireError(code);
        assert.ok(wire.length > 0, code);
        if (code !== 'INTERNAL') assert.notEqual(wire, p.internalWireError, `${code} falls through to the internal error`);
      }
    });
  });
}
