/**
 * Shared set-up for the provisioner tests: a PostgreSQL 15 cluster with a `reporting`
 * database (public.sales, public.customers, vault.secrets), and `airlock_admin`, a
 * non-superuser CREATEROLE admin holding the grant options it hands out — the shape a
 * managed database (RDS) allows.
 */
import postgres from 'postgres';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { newGrantId } from '../../core/grants/credentials.ts';
import { resolvePostgresScope } from '../../plugins/postgres/provision/scope.ts';
import { postgresResourceSchema, type PostgresResource } from '../../plugins/postgres/config.ts';
import type { ProvisionGrant, RoleRecordType } from '../../plugins/postgres/provision/provisioner.ts';

export const ADMIN = 'airlock_admin';
export const ADMIN_PASSWORD = 'airlock-admin-test-pw';

export async function prepareDatabase(cluster: PostgresCluster, opts: { rdsIam?: boolean } = {}): Promise<void> {
  await cluster.sql(`create role ${ADMIN} login createrole password '${ADMIN_PASSWORD}'`);
  await cluster.sql('create database reporting');
  if (opts.rdsIam) await cluster.sql(`create role rds_iam nologin; grant rds_iam to ${ADMIN};`);
  await cluster.sql(
    `create table sales (id serial primary key, month text not null, amount numeric not null);
     insert into sales (month, amount) select 'm' || g, g * 10 from generate_series(1, 12) g;
     create table customers (id serial primary key, name text);
     insert into customers (name) values ('ada'), ('bob');
     create schema vault;
     create table vault.secrets (id int primary key, token text);
     insert into vault.secrets values (1, 'top secret');
     grant connect on database reporting to ${ADMIN} with grant option;
     grant usage on schema public, vault to ${ADMIN} with grant option;
     grant all on all tables in schema public, vault to ${ADMIN} with grant option;
     grant usage, select on all sequences in schema public to ${ADMIN} with grant option;`,
    'reporting',
  );
}

export function resource(auth: 'password' | 'rds-iam' = 'password', port = 5432): PostgresResource {
  return postgresResourceSchema.parse({
    type: 'postgres',
    host: '127.0.0.1',
    port,
    database: 'reporting',
    tls: 'require',
    auth: auth === 'password' ? { type: 'password', passwordEnv: 'UNUSED_PW' } : { type: 'rds-iam' },
    provision: auth === 'password' ? { user: ADMIN, passwordEnv: 'ADMIN_PW' } : { user: ADMIN },
    access: {
      read: { privileges: ['SELECT'], tables: ['public.*'] },
      write: { privileges: ['SELECT', 'INSERT', 'UPDATE'], tables: ['public.sales', 'public.customers'] },
      everything: { privileges: ['SELECT'], tables: ['public.*', 'vault.*'] },
    },
  });
}

/** A grant as core hands it to the lifecycle hook: id, expiry and the scope resolveScope made. */
export function makeGrant(r: PostgresResource, access: string, scope?: Record<string, unknown>, ttlMs = 10 * 60_000): ProvisionGrant {
  // resolvePostgresScope itself: the registered plugin's resolveScope takes a block as the core validated it, not this parsed one.
  return { id: newGrantId(), expiresAt: new Date(Date.now() + ttlMs).toISOString(), scope: { ...resolvePostgresScope(r, access, scope) } };
}

export interface Recorded {
  type: RoleRecordType;
  data: Record<string, unknown>;
}

export function recorder(): { records: Recorded[]; record: (type: RoleRecordType, data: Record<string, unknown>) => void } {
  const records: Recorded[] = [];
  return { records, record: (type, data) => records.push({ type, data }) };
}

/** A client logged in as the grant role (password login over TLS). */
export function connectAs(cluster: PostgresCluster, role: string, password: string) {
  return postgres({ host: cluster.host, port: cluster.port, database: 'reporting', username: role, password, ssl: { rejectUnauthorized: false }, max: 1, connect_timeout: 10, onnotice: () => {} });
}

export async function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected the statement to fail');
}

/**
 * A gateway config with one `reporting` resource on `port`: provisioned levels `read` (every
 * public table) and `write` (sales), static levels `static` and `static-ro` (agent_ro), all
 * granted to `agent` without approval. `gatewayExtra` is added inside `gateway:`. Needs
 * AIRLOCK_TEST_PG_PW (the static levels' password) and AIRLOCK_TEST_ADMIN_PW.
 */
export function provisionedGatewayYaml(port: number, agent: string, gatewayExtra = ''): string {
  return `
gateway:
  postgres: { listen: 127.0.0.1:0, tls: self-signed }
${gatewayExtra}
aws: { region: us-east-1 }
resources:
  reporting:
    type: postgres
    host: 127.0.0.1
    port: ${port}
    database: reporting
    tls: require
    auth: { type: password, passwordEnv: AIRLOCK_TEST_PG_PW }
    provision: { user: ${ADMIN}, passwordEnv: AIRLOCK_TEST_ADMIN_PW }
    access:
      read: { privileges: [SELECT], tables: ["public.*"] }
      write: { privileges: [SELECT, INSERT, UPDATE], tables: [public.sales] }
      static: { user: agent_ro }
      static-ro: { user: agent_ro, readOnly: true }
policies:
  - { agents: ['${agent}'], resources: [reporting], access: [read, write, static, static-ro], maxTtl: 15m, approval: none }
audit:
  durability: buffered
`;
}
