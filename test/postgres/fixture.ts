/**
 * Shared set-up for the Postgres end-to-end tests: one throwaway PostgreSQL 15 cluster with a
 * `reporting` database, a read-only role and a read-write role, and a real in-process gateway
 * whose `reporting` resource points at it. Helpers get grants and run real psql.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';
import type { AuditRecord } from '../../core/plugin.ts';

export const ROLE_PASSWORD = 'airlock-test-role-pw';
export const AGENT_NAME = 'report-bot';
export const AGENT = `local:${AGENT_NAME}`;

export interface PgFixture {
  cluster: PostgresCluster;
  gw: TestGateway;
  token: string;
  /** The gateway's postgres listener. */
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startCluster(opts: Parameters<typeof startPostgresCluster>[0] = {}): Promise<PostgresCluster> {
  const cluster = await startPostgresCluster(opts);
  try {
    await cluster.sql(`create role agent_ro login password '${ROLE_PASSWORD}'; create role agent_rw login password '${ROLE_PASSWORD}';`);
    await cluster.sql('create database reporting');
    await cluster.sql(
      `create table revenue (id serial primary key, month text not null, amount numeric not null);
       insert into revenue (month, amount) select 'm' || g, g * 10 from generate_series(1, 50) g;
       create table big (id int primary key, payload text);
       insert into big select g, repeat(md5(g::text), 8) from generate_series(1, 20000) g;
       create table notes (id serial primary key, body text);
       grant select on all tables in schema public to agent_ro;
       grant select, insert, update, delete on all tables in schema public to agent_rw;
       grant usage on all sequences in schema public to agent_rw;`,
      'reporting',
    );
    return cluster;
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

export interface FixtureOptions {
  tls?: 'disable' | 'require' | 'verify-full';
  durability?: 'strict' | 'buffered';
  recordParameters?: boolean;
  /** YAML flow mapping for `auth`. */
  auth?: string;
  host?: string;
  port?: number;
  extraResourceYaml?: string;
  /** Extra keys for the gateway.postgres flow mapping, e.g. `maxMessageBytes: 65536`. */
  listenerExtra?: string;
  /** Extra keys for the policy's flow mapping, e.g. `maxSessions: 5`. */
  policyExtra?: string;
}

export function gatewayYaml(cluster: PostgresCluster, o: FixtureOptions = {}): string {
  return `
gateway:
  postgres: { listen: 127.0.0.1:0, tls: self-signed${o.listenerExtra ? ', ' + o.listenerExtra : ''} }
aws: { region: us-east-1 }
resources:
  reporting:
    type: postgres
    host: ${o.host ?? '127.0.0.1'}
    port: ${o.port ?? cluster.port}
    database: reporting
    tls: ${o.tls ?? 'require'}
    auth: ${o.auth ?? '{ type: password, passwordEnv: AIRLOCK_TEST_PG_PW }'}
    recordParameters: ${o.recordParameters ?? false}
${o.extraResourceYaml ?? ''}
    access:
      read: { user: agent_ro }
      write: { user: agent_rw }
policies:
  - { agents: ['${AGENT}'], resources: [reporting], access: [read, write], maxTtl: 15m, approval: none${o.policyExtra ? ', ' + o.policyExtra : ''} }
audit:
  durability: ${o.durability ?? 'strict'}
`;
}

export async function startFixture(cluster: PostgresCluster, o: FixtureOptions = {}, env: Record<string, string> = {}): Promise<PgFixture> {
  const gw = await startTestGateway({ yaml: gatewayYaml(cluster, o), env: { AIRLOCK_TEST_PG_PW: ROLE_PASSWORD, ...env } });
  const listen = gw.listening.postgres?.[0];
  if (!listen) {
    await gw.close();
    throw new Error(`gateway has no postgres listener: ${JSON.stringify(gw.listening)}`);
  }
  const host = listen.slice(0, listen.lastIndexOf(':'));
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  const token = await gw.tokenFor(AGENT_NAME).catch(async (e: unknown) => {
    await gw.close();
    throw e;
  });
  return { cluster, gw, token, host, port, close: () => gw.close() };
}

export interface PgGrant {
  id: string;
  secret: string;
  env: Record<string, string>;
  url: string;
}

export async function grant(f: PgFixture, access: 'read' | 'write' = 'read', ttl = '5m'): Promise<PgGrant> {
  const res = await f.gw.requestGrant(f.token, { resource: 'reporting', access, ttl, task: 'postgres e2e test' });
  if (res.status !== 201 || !res.body.id || !res.body.secret || !res.body.connect) throw new Error(`grant refused: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, secret: res.body.secret, env: res.body.connect.env, url: String(res.body.connect.url) };
}

export interface PsqlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run psql with the grant's environment (only it: no PG* leaks in from the test process). */
export async function psql(env: Record<string, string>, args: string[], input?: string): Promise<PsqlResult> {
  const child = spawnPsql(env, ['-v', 'ON_ERROR_STOP=1', ...args]);
  return await collect(child, input);
}

export function spawnPsql(env: Record<string, string>, args: string[]): ChildProcess {
  return spawn('psql', ['-X', '-At', ...args], {
    env: { PATH: process.env.PATH ?? '', PGCONNECT_TIMEOUT: '10', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/**
 * `collect`, bounded: a psql that has not exited after `ms` is killed and the test fails saying
 * what it waited for, instead of hanging the file until the runner's bound.
 */
export async function collectWithin(child: ChildProcess, ms: number, what: string): Promise<PsqlResult> {
  const done = collect(child);
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      void done.then((r) => reject(new Error(`psql did not exit within ${ms} ms (${what}); stderr: ${r.stderr}`)));
    }, ms);
  });
  try {
    return await Promise.race([done, bound]);
  } finally {
    clearTimeout(timer);
  }
}

export async function collect(child: ChildProcess, input?: string): Promise<PsqlResult> {
  return await new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** A statement's outcome as the audit holds it: a `pg.result` record, or folded into a later `pg.query` (`data.done`). */
export interface StatementOutcome {
  /** Seq of the statement's pg.query. */
  query: number;
  outcome: string;
  rows?: number;
  commands?: string[];
  error?: { code: string; message: string };
  /** True when it rode on the session's next pg.query instead of a record of its own. */
  folded: boolean;
  [key: string]: unknown;
}

/** Every statement outcome in `records`, both forms (plugins/postgres/outcome-fold.ts), in statement order. */
export function statementOutcomes(records: readonly AuditRecord[]): StatementOutcome[] {
  const out: StatementOutcome[] = [];
  for (const r of records) {
    if (r.type === 'pg.result') out.push({ ...r.data, query: Number(r.data?.query), outcome: r.outcome, folded: false });
    const done = r.type === 'pg.query' ? r.data?.done : undefined;
    if (Array.isArray(done)) for (const d of done as Array<Record<string, unknown>>) out.push({ ...d, query: Number(d.query), outcome: String(d.outcome), folded: true });
  }
  return out.sort((a, b) => a.query - b.query);
}
