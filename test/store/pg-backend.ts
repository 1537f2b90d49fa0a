/** One real PostgreSQL cluster per test file; each test gets its own schema in it. */
import { randomBytes } from 'node:crypto';
import { PostgresSharedStore, type PostgresStoreOptions } from '../../core/store/postgres/store.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import type { StoreBackend } from './conformance.ts';

export function storeUrl(cluster: PostgresCluster): string {
  return `${cluster.connectionString(cluster.superuser, cluster.superuserPassword)}?sslmode=disable`;
}

export function freshSchema(): string {
  return `t_${randomBytes(5).toString('hex')}`;
}

export function pgStore(cluster: PostgresCluster, schema: string, replicaId: string, extra: Partial<PostgresStoreOptions> = {}): PostgresSharedStore {
  return new PostgresSharedStore({ url: storeUrl(cluster), schema, replicaId, pollMs: 500, ...extra });
}

export function postgresBackend(cluster: () => PostgresCluster): StoreBackend {
  return {
    name: 'postgres',
    instances: 3,
    async fresh() {
      const schema = freshSchema();
      return {
        make: (replicaId) => pgStore(cluster(), schema, replicaId),
        cleanup: async () => void (await cluster().sql(`drop schema if exists ${schema} cascade`)),
      };
    },
  };
}
