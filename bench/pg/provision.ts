/**
 * What a role per grant costs: grant activations per second (create the role with its
 * privileges, then drop it: the provisioner's whole job for one grant), activation latency,
 * and the connect latency (TLS off, SCRAM-SHA-256 login, `select 1`, close) of a provisioned
 * role beside a static role of the same privileges, alternating, on one throwaway
 * PostgreSQL 15. Run: `node --import tsx bench/pg/provision.ts [--grants 200] [--connects 200]`.
 */
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { startPostgresCluster } from '../../test/harness/postgres-cluster.ts';
import { ADMIN, ADMIN_PASSWORD, makeGrant, prepareDatabase, resource } from '../../test/postgres/provision-fixture.ts';
import { RoleProvisioner } from '../../plugins/postgres/provision/provisioner.ts';
import { mean, percentileSorted, round } from '../lib/stats.ts';

const { values } = parseArgs({ options: { grants: { type: 'string', default: '200' }, connects: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '4' } } });
const GRANTS = Number(values.grants);
const CONNECTS = Number(values.connects);
const CONCURRENCY = Number(values.concurrency);

function summary(ms: number[]): { mean: number; p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { mean: round(mean(s), 2), p50: round(percentileSorted(s, 50), 2), p99: round(percentileSorted(s, 99), 2) };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const cluster = await startPostgresCluster({ ssl: false });
const prov = new RoleProvisioner({ admin: { host: cluster.host, port: cluster.port, database: 'reporting', user: ADMIN, password: ADMIN_PASSWORD, tls: 'disable' }, rdsIam: false, record: () => {} });
try {
  await prepareDatabase(cluster);
  await cluster.sql(`create role static_ro login password 'static-ro-pw'; grant connect on database reporting to static_ro;`);
  await cluster.sql('grant usage on schema public to static_ro; grant select on public.sales to static_ro;', 'reporting');
  const r = resource();

  // Warm-up: the admin pool's connections and the catalogue caches.
  for (let i = 0; i < 5; i++) {
    const g = makeGrant(r, 'read', { tables: ['sales'] });
    await prov.activate(g);
    await prov.end(g, 'expired');
  }

  const activate: number[] = [];
  const end: number[] = [];
  const serialStart = performance.now();
  for (let i = 0; i < GRANTS; i++) {
    const g = makeGrant(r, 'read', { tables: ['sales'] });
    activate.push(await timed(() => prov.activate(g)));
    end.push(await timed(() => prov.end(g, 'expired')));
  }
  const serialSeconds = (performance.now() - serialStart) / 1000;

  const parallelStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < GRANTS) {
        next++;
        const g = makeGrant(r, 'read', { tables: ['sales'] });
        await prov.activate(g);
        await prov.end(g, 'expired');
      }
    }),
  );
  const parallelSeconds = (performance.now() - parallelStart) / 1000;

  const held = makeGrant(r, 'read', { tables: ['sales'] });
  const role = await prov.activate(held);
  const connect = (user: string, password: string) =>
    timed(async () => {
      const sql = postgres({ host: cluster.host, port: cluster.port, database: 'reporting', username: user, password, ssl: false, max: 1, onnotice: () => {} });
      await sql`select 1`;
      await sql.end();
    });
  const staticMs: number[] = [];
  const provisionedMs: number[] = [];
  for (let i = 0; i < 10; i++) {
    await connect('static_ro', 'static-ro-pw');
    await connect(role.role, role.password!);
  }
  for (let i = 0; i < CONNECTS; i++) {
    staticMs.push(await connect('static_ro', 'static-ro-pw'));
    provisionedMs.push(await connect(role.role, role.password!));
  }
  await prov.end(held, 'expired');

  const result = {
    grants: GRANTS,
    grantCyclesPerSecond: { note: 'activate + end of one grant', serial: round(GRANTS / serialSeconds, 1), [`concurrency${CONCURRENCY}`]: round(GRANTS / parallelSeconds, 1) },
    activationsPerSecondSerial: round(1000 / mean(activate), 1),
    activateMs: summary(activate),
    endMs: summary(end),
    connectMs: { static: summary(staticMs), provisioned: summary(provisionedMs) },
    addedConnectMs: round(mean(provisionedMs) - mean(staticMs), 2),
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await prov.close();
  await cluster.stop();
}
