/**
 * Starts a real gateway in-process on loopback with a temp dataDir, for end-to-end tests.
 * Tokens are minted by the gateway's own issuer; grants go through the real control API.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Agent, fetch as undiciFetch } from 'undici';
import { parse as parseYaml } from 'yaml';
import { startGateway, type Gateway } from '../../core/hub.ts';
import { mintAgentToken } from '../../core/identity/local-issuer.ts';
import type { AuditRecord, RegisteredPlugin } from '../../core/plugin.ts';
import { plugins } from '../../plugins/index.ts';
import { sinks } from '../../audit-sinks/index.ts';

export interface TestGatewayOptions {
  /** YAML text of the config (dataDir and listen addresses are filled in when absent). */
  yaml?: string;
  /** Or a config object. */
  config?: Record<string, unknown>;
  /** Environment variables set for the gateway's lifetime (restored at close). */
  env?: Record<string, string>;
  /** Reuse a dataDir (restart tests). */
  dataDir?: string;
  /** Log to stderr at this level (default: silent). */
  logLevel?: string;
  /** Write the gateway's log lines here instead of stderr (tests that inspect the log). */
  logStream?: { write(line: string): void };
  /** Plugins beside the registered ones (core tests use a test-only plugin). */
  extraPlugins?: readonly RegisteredPlugin[];
}

export interface GrantResponse {
  status: number;
  body: Record<string, unknown> & {
    id?: string;
    secret?: string;
    error?: string;
    connect?: Record<string, unknown> & { env: Record<string, string> };
  };
}

export interface TestGateway {
  readonly url: string;
  readonly listening: Readonly<Record<string, readonly string[]>>;
  readonly dataDir: string;
  readonly gateway: Gateway;
  tokenFor(agent: string, ttlMs?: number): Promise<string>;
  adminToken(): Promise<string>;
  requestGrant(token: string, body: Record<string, unknown>): Promise<GrantResponse>;
  revoke(id: string, token: string): Promise<{ status: number; body: Record<string, unknown> }>;
  api(method: string, path: string, token: string | undefined, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Every record in the spool, in seq order. */
  auditRecords(): AuditRecord[];
  /** Spool segment files, for `verifyAuditFiles`. */
  auditFiles(): string[];
  close(opts?: { keepDataDir?: boolean }): Promise<void>;
}

export const ADMIN_AGENT = 'ops';

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'airlock-test-'));
  const raw = (options.config ?? (options.yaml ? parseYaml(options.yaml) : {})) as Record<string, unknown>;
  const config = structuredClone(raw) as Record<string, Record<string, unknown>>;
  config.gateway ??= {};
  config.gateway.dataDir ??= dataDir;
  config.gateway.http ??= {};
  (config.gateway.http as Record<string, unknown>).listen ??= '127.0.0.1:0';
  config.identity ??= { issuers: [{ name: 'local', type: 'local' }], admins: [`local:${ADMIN_AGENT}`] };
  config.identity.admins ??= [`local:${ADMIN_AGENT}`];

  const savedEnv: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(options.env ?? {})) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  const log = pino({ level: options.logLevel ?? process.env.AIRLOCK_TEST_LOG ?? 'silent' }, options.logStream ?? pino.destination(2));
  let gateway: Gateway;
  try {
    gateway = await startGateway({ config, plugins: [...plugins, ...(options.extraPlugins ?? [])], sinks, log });
  } catch (e) {
    restoreEnv(savedEnv);
    throw e;
  }
  const resolvedDataDir = String(config.gateway.dataDir);

  // Over self-signed TLS (gateway.http.tls), trust exactly the gateway's certificate.
  const caPem = gatewayCaPem(resolvedDataDir, config.gateway.http as Record<string, unknown>);
  const dispatcher = caPem ? new Agent({ connect: { ca: caPem } }) : undefined;
  const api: TestGateway['api'] = async (method, path, token, body) => {
    const res = await undiciFetch(new URL(path, gateway.url), {
      ...(dispatcher ? { dispatcher } : {}),
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : null,
    });
    const text = await res.text();
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = { text };
    }
    return { status: res.status, body: parsed };
  };

  const spoolFiles = () => {
    const dir = join(resolvedDataDir, 'spool');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort()
      .map((f) => join(dir, f));
  };

  return {
    get url() {
      return gateway.url;
    },
    listening: gateway.listening,
    dataDir: resolvedDataDir,
    gateway,
    tokenFor: (agent, ttlMs = 3_600_000) => mintAgentToken(gateway.identity, agent, ttlMs),
    adminToken: () => mintAgentToken(gateway.identity, ADMIN_AGENT, 3_600_000),
    requestGrant: async (token, body) => (await api('POST', '/v1/grants', token, body)) as GrantResponse,
    revoke: (id, token) => api('DELETE', `/v1/grants/${id}`, token),
    api,
    auditFiles: spoolFiles,
    auditRecords: () =>
      spoolFiles()
        // The segment being written ends in NUL bytes the spool preallocated (core/audit/segments.ts).
        .flatMap((f) => readFileSync(f, 'utf8').replace(/\0+$/, '').split('\n').filter(Boolean))
        .map((l) => JSON.parse(l) as AuditRecord)
        .sort((a, b) => a.seq - b.seq),
    close: async (opts) => {
      await gateway.close();
      await dispatcher?.close();
      restoreEnv(savedEnv);
      if (!opts?.keepDataDir && !options.dataDir) rmSync(resolvedDataDir, { recursive: true, force: true });
    },
  };
}

function restoreEnv(saved: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

/** Poll until `check` returns a value (or throw after `timeoutMs`). */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function gatewayCaPem(dataDir: string, http: Record<string, unknown>): string | undefined {
  const tls = http.tls as string | { cert: string } | undefined;
  if (!tls) return undefined;
  return readFileSync(typeof tls === 'string' ? join(dataDir, 'tls', 'self-signed.crt') : tls.cert, 'utf8');
}

/** The environment of a gateway whose own AWS identity is `keys`: nothing from this machine's profile or credential files. */
export function ownAwsIdentityEnv(keys: { accessKeyId: string; secretAccessKey: string }): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey, AWS_SESSION_TOKEN: '', AWS_PROFILE: '', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
}
