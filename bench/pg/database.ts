/**
 * The PostgreSQL every Postgres figure is measured against: a throwaway PG 15 cluster
 * (test/harness/postgres-cluster.ts; fsync off, so the database is not the bottleneck), a
 * `bench` role owning a `bench` database initialised by `pgbench -i`. TLS is off on every hop
 * (client→proxy, proxy→server, client→server) so that direct, pgbouncer and airlock do the
 * same work on the wire; the clients authenticate with SCRAM-SHA-256 everywhere.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { startPostgresCluster, type PostgresCluster } from '../../test/harness/postgres-cluster.ts';
import type { PgTarget } from './pgbench.ts';

const execFileAsync = promisify(execFile);

export const BENCH_USER = 'bench';
export const BENCH_DB = 'bench';
export const PASSWORD_ENV = 'BENCH_PG_PASSWORD';

export interface BenchDatabase {
  cluster: PostgresCluster;
  password: string;
  direct: PgTarget;
  stop(): Promise<void>;
}

export async function startBenchDatabase(o: { maxConnections: number; pgbench?: string; scale?: number }): Promise<BenchDatabase> {
  const cluster = await startPostgresCluster({
    ssl: false,
    extraConf: [`max_connections = ${o.maxConnections}`, 'shared_buffers = 256MB'],
  });
  const password = randomBytes(12).toString('hex');
  try {
    await cluster.sql(`create role ${BENCH_USER} login password '${password}'`);
    await cluster.sql(`create database ${BENCH_DB} owner ${BENCH_USER}`);
    const direct: PgTarget = { host: cluster.host, port: cluster.port, user: BENCH_USER, password, database: BENCH_DB };
    if (o.pgbench) {
      try {
        await execFileAsync(o.pgbench, ['-i', '-q', '-s', String(o.scale ?? 8), '-h', direct.host, '-p', String(direct.port), '-U', BENCH_USER, BENCH_DB], {
          env: { PATH: process.env.PATH ?? '', PGPASSWORD: password, PGSSLMODE: 'disable' },
          encoding: 'utf8',
          maxBuffer: 16 << 20,
        });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`pgbench -i failed: ${(err.stderr || err.message).trim().slice(-1500)}`);
      }
    }
    return { cluster, password, direct, stop: () => cluster.stop() };
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

/** airlock's config for one Postgres resource `bench` in front of the database. */
export function postgresGatewayConfig(db: BenchDatabase, durability: 'strict' | 'buffered', agent: string): Record<string, unknown> {
  return {
    gateway: {
      http: { listen: '127.0.0.1:0' },
      // pgbench connects in plaintext (as pgbouncer and the direct runs do): allowed explicitly.
      postgres: { listen: '127.0.0.1:0', tls: 'self-signed', allowPlaintext: true },
    },
    aws: { region: 'us-east-1' },
    resources: {
      bench: {
        type: 'postgres',
        host: db.cluster.host,
        port: db.cluster.port,
        database: BENCH_DB,
        tls: 'disable',
        auth: { type: 'password', passwordEnv: PASSWORD_ENV },
        access: { write: { user: BENCH_USER } },
      },
    },
    policies: [{ agents: [`local:${agent}`], resources: ['bench'], access: ['write'], maxTtl: '4h', approval: 'none', maxSessions: 2000 }],
    audit: { durability, sinks: [{ type: 'file', path: '{dataDir}/audit/audit.jsonl' }] },
  };
}
