/** The plugin conformance suite against the Postgres plugin: psql and postgres.js, a real PostgreSQL. */
import postgres from 'postgres';
import { AirlockError } from '../../core/errors.ts';
import { fatalFor } from '../../plugins/postgres/sqlstate.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { collect, spawnPsql, startCluster, startFixture, type PgFixture } from '../postgres/fixture.ts';
import { runPluginConformance, UpstreamWatch, watchingRelay } from './conformance.ts';

runPluginConformance({
  type: 'postgres',
  async start() {
    const watch = new UpstreamWatch();
    const cluster: PostgresCluster = await startCluster();
    let relay: Awaited<ReturnType<typeof watchingRelay>> | undefined;
    let f: PgFixture | undefined;
    try {
      relay = await watchingRelay({ host: '127.0.0.1', port: cluster.port }, watch);
      // Plaintext to the upstream, so the relay sees the statements pass.
      f = await startFixture(cluster, { tls: 'disable', port: relay.port });
    } catch (e) {
      await relay?.close();
      await cluster.stop();
      throw e;
    }
    const fx = f;
    const client = (user: string, pass: string) => postgres({ host: fx.host, port: fx.port, user, pass, database: 'reporting', ssl: 'require', max: 1, onnotice: () => {}, connect_timeout: 10 });
    return {
      gw: fx.gw,
      agentToken: fx.token,
      grantRequest: { resource: 'reporting', access: 'read', ttl: '5m', task: 'conformance' },
      widenedScope: { tables: ['revenue'] },
      watch,
      async refusalFor(id, secret) {
        const sql = client(id, secret);
        try {
          await sql`select 1`;
          return 'accepted';
        } catch (e) {
          return `${(e as { code?: string }).code} ${(e as Error).message.replaceAll(id, '<id>')}`;
        } finally {
          await sql.end({ timeout: 1 });
        }
      },
      async prepareRequest(g, marker) {
        const sql = client(g.id, g.secret);
        await sql`select 1`;
        return { run: async () => void (await sql.unsafe(`select '${marker}' as marker`).simple()), done: () => sql.end({ timeout: 1 }) };
      },
      isRequestRecord: (r, g, marker) => r.type === 'pg.query' && r.grant === g.id && String(r.data?.['sql']).includes(marker),
      async openSession(g) {
        const child = spawnPsql(g.connect.env, []);
        const closed = collect(child).then((r) => r.stderr);
        child.stdin!.write('select 41 + 1;\nselect pg_sleep(30);\n');
        await new Promise<void>((resolve, reject) => {
          child.stdout!.on('data', (d: Buffer) => d.toString().includes('42') && resolve());
          child.once('close', () => reject(new Error('psql ended before the session was live')));
        });
        return { closed };
      },
      wireError: (code) => fatalFor(new AirlockError(code, 'x')).code,
      internalWireError: 'XX000',
      async close() {
        await fx.close();
        await relay?.close();
        await cluster.stop();
      },
    };
  },
});
