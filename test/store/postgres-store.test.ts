/** The shared-store conformance suite against PostgreSQL 15: three instances on one database. */
import { after, before } from 'node:test';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { storeConformance } from './conformance.ts';
import { postgresBackend } from './pg-backend.ts';

let cluster: PostgresCluster | undefined;
before(async () => {
  cluster = await startPostgresCluster();
});
after(async () => {
  await cluster?.stop();
});

storeConformance(postgresBackend(() => {
  if (!cluster) throw new Error('PostgreSQL cluster did not start');
  return cluster;
}));
