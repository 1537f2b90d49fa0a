/**
 * Three `airlock serve` processes sharing one PostgreSQL store, in front of one upstream
 * PostgreSQL (a separate cluster, so the store can be stopped while the upstream runs).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch as undiciFetch } from 'undici';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { startCluster, ROLE_PASSWORD, AGENT, AGENT_NAME } from '../postgres/fixture.ts';
import { spawnGateway, type Child } from '../core/fixtures/child.ts';
import { runToken } from '../../core/cli/token.ts';
import { plugins } from '../../plugins/index.ts';
import { sinks } from '../../audit-sinks/index.ts';

export const APPROVAL_AGENT = 'needs-approval';
export const ADMIN = 'ops';
export const SECOND_ADMIN = 'ops2';
/** The upstream admin that makes per-grant roles (a CREATEROLE non-superuser, as on RDS). */
export const PROVISION_ADMIN = 'airlock_admin';
const PROVISION_ADMIN_PASSWORD = 'airlock-admin-replicas-pw';

export interface Replica {
  readonly name: string;
  readonly configPath: string;
  readonly dataDir: string;
  child: Child;
  readonly url: string;
  /** host and port of its Postgres listener. */
  pg: { host: string; port: number };
}

export interface Stack {
  readonly upstream: PostgresCluster;
  readonly store: PostgresCluster;
  readonly replicas: Replica[];
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  token(replica: Replica, agent: string): Promise<string>;
  restart(replica: Replica): Promise<void>;
  /** Every audit record of every replica (spool files), parsed. */
  records(): Array<Record<string, unknown>>;
  spoolFiles(replica: Replica): string[];
  close(): Promise<void>;
}

function yaml(dataDir: string, upstreamPort: number, maxStaleness: string): string {
  return `
gateway:
  http: { listen: 127.0.0.1:0 }
  dataDir: ${dataDir}
  postgres: { listen: 127.0.0.1:0, tls: self-signed }
identity:
  issuers: [{ name: local, type: local }]
  admins: ['local:${ADMIN}', 'local:${SECOND_ADMIN}']
aws: { region: us-east-1 }
store: { type: postgres, urlEnv: AIRLOCK_STORE_URL, maxStaleness: ${maxStaleness} }
resources:
  reporting:
    type: postgres
    host: 127.0.0.1
    port: ${upstreamPort}
    database: reporting
    tls: require
    auth: { type: password, passwordEnv: AIRLOCK_TEST_PG_PW }
    provision: { user: ${PROVISION_ADMIN}, passwordEnv: AIRLOCK_TEST_ADMIN_PW }
    access:
      read: { user: agent_ro }
      revenue-only: { privileges: [SELECT], tables: [public.revenue] }
policies:
  - { agents: ['${AGENT}'], resources: [reporting], access: [read, revenue-only], maxTtl: 15m, approval: none, maxSessions: 1000 }
  - { agents: ['local:${APPROVAL_AGENT}'], resources: [reporting], access: [read], maxTtl: 15m, approval: required }
audit:
  durability: buffered
`;
}

async function startReplica(r: Omit<Replica, 'child' | 'url' | 'pg'>, env: NodeJS.ProcessEnv): Promise<Replica> {
  const child = await spawnGateway(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'serve-child.ts'), r.configPath], env, 120_000);
  const info = child.info as Child['info'] & { listening: Record<string, string[]> };
  const listen = info.listening.postgres?.[0];
  if (!listen) throw new Error(`${r.name}: no postgres listener: ${JSON.stringify(info.listening)}`);
  return { ...r, child, url: info.url, pg: { host: listen.slice(0, listen.lastIndexOf(':')), port: Number(listen.slice(listen.lastIndexOf(':') + 1)) } };
}

export async function startStack(o: { maxStaleness?: string } = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-replicas-'));
  const cleanups: Array<() => Promise<void>> = [];
  const replicas: Replica[] = [];
  try {
    const upstream = await startCluster();
    cleanups.push(() => upstream.stop());
    await upstream.sql(`create role ${PROVISION_ADMIN} login createrole password '${PROVISION_ADMIN_PASSWORD}'`);
    await upstream.sql(
      `grant connect on database reporting to ${PROVISION_ADMIN} with grant option;
       grant usage on schema public to ${PROVISION_ADMIN} with grant option;
       grant all on all tables in schema public to ${PROVISION_ADMIN} with grant option;`,
      'reporting',
    );
    const store = await startPostgresCluster({ ssl: false });
    cleanups.push(() => store.stop());
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AIRLOCK_TEST_PG_PW: ROLE_PASSWORD,
      AIRLOCK_TEST_ADMIN_PW: PROVISION_ADMIN_PASSWORD,
      AIRLOCK_STORE_URL: store.connectionString(store.superuser, store.superuserPassword, 'postgres'),
      AIRLOCK_DRAIN_TIMEOUT: '1s',
    };
    for (const name of ['a', 'b', 'c']) {
      const dataDir = join(dir, name);
      const configPath = join(dir, `${name}.yaml`);
      writeFileSync(configPath, yaml(dataDir, upstream.port, o.maxStaleness ?? '15s'));
      // Started one after the other: the first creates the schema and the issuer key.
      replicas.push(await startReplica({ name, configPath, dataDir }, env));
    }
    const stack: Stack = {
      upstream,
      store,
      replicas,
      dir,
      env,
      token: async (replica, agent) => {
        // `airlock token --config` as the CLI runs it, with the replica's environment.
        const keys = ['AIRLOCK_STORE_URL', 'AIRLOCK_TEST_PG_PW', 'AIRLOCK_TEST_ADMIN_PW'] as const;
        const saved = keys.map((k) => process.env[k]);
        for (const k of keys) process.env[k] = env[k];
        try {
          return await runToken({ agent, ttl: '1h', config: replica.configPath }, { plugins, sinks });
        } finally {
          keys.forEach((k, i) => {
            const v = saved[i];
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
          });
        }
      },
      restart: async (replica) => {
        const next = await startReplica(replica, env);
        Object.assign(replica, { child: next.child, url: next.url, pg: next.pg });
      },
      spoolFiles: (replica) => {
        const spool = join(replica.dataDir, 'spool');
        if (!existsSync(spool)) return [];
        return readdirSync(spool).filter((f) => f.endsWith('.jsonl')).sort().map((f) => join(spool, f));
      },
      records: () => {
        const out: Array<Record<string, unknown>> = [];
        for (const r of replicas) {
          for (const f of stack.spoolFiles(r)) {
            for (const line of readFileSync(f, 'utf8').split('\n')) {
              if (!line.trim()) continue;
              try {
                out.push({ ...(JSON.parse(line) as Record<string, unknown>), replica: r.name });
              } catch {
                // a torn last line of a killed replica
              }
            }
          }
        }
        return out;
      },
      close: async () => {
        for (const r of replicas) await r.child.stop('SIGKILL').catch(() => {});
        for (const c of cleanups.reverse()) await c().catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return stack;
  } catch (e) {
    for (const r of replicas) await r.child.stop('SIGKILL').catch(() => {});
    for (const c of cleanups.reverse()) await c().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export async function api(replica: Replica, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await undiciFetch(new URL(path, replica.url), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : null,
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.status, body: { text } };
  }
}

/** The psql environment of a grant, pointed at one replica's listener. */
export function pgEnv(connectEnv: Record<string, string>, replica: Replica): Record<string, string> {
  return { ...connectEnv, PGHOST: replica.pg.host, PGPORT: String(replica.pg.port), PGSSLMODE: 'require' };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export { AGENT_NAME };
