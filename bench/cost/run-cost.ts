/**
 * The cost part: resident memory per idle Postgres session (airlock beside pgbouncer, 1,000
 * sessions each) and grants issued per second (strict audit). CPU per statement and per
 * request are measured in the pg and http parts, during their runs.
 */
import { startGatewayProcess, type GatewayProcess } from '../lib/gateway-process.ts';
import { rssBytes } from '../lib/proc.ts';
import { startBenchDatabase, postgresGatewayConfig, BENCH_DB, BENCH_USER, PASSWORD_ENV } from '../pg/database.ts';
import { startPgbouncer } from '../pg/pgbouncer.ts';
import { startFloor } from '../lib/floor-process.ts';
import { measureIdleSessions, medianOfFresh, type IdleSessionsResult } from './idle-sessions.ts';
import { measureGrantRate, type GrantRateResult } from './grants.ts';

export interface CostPartResult {
  /** `nodeRelay`: the Node floor (bench/floor-server.ts tcp), two sockets and a pipe per session. */
  idleSessions: { airlock: IdleSessionsResult; pgbouncer: IdleSessionsResult; nodeRelay?: IdleSessionsResult | undefined };
  grants: GrantRateResult[];
}

export interface CostPartOptions {
  pgbouncer: string;
  seconds: number;
  profileDir?: string | undefined;
  progress: (line: string) => void;
}

const AGENT = 'bench';
const SESSIONS = 1000;
/** Idle memory is read on this many fresh processes (airlock and the relay alike), the median kept. */
const FRESH_READINGS = 3;

export async function runCostPart(o: CostPartOptions): Promise<CostPartResult> {
  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    o.progress(`cost: starting PostgreSQL 15 (max_connections ${SESSIONS + 100})`);
    const db = await startBenchDatabase({ maxConnections: SESSIONS + 100 });
    started.push(db);

    const config = postgresGatewayConfig(db, 'strict', AGENT);
    // A DynamoDB resource too, to issue grants for an AWS-style resource (never contacted).
    (config.resources as Record<string, unknown>).orders = { type: 'dynamodb', region: 'us-east-1', tables: ['orders'], access: { read: ['GetItem'] } };
    (config.policies as Array<Record<string, unknown>>).push({ agents: [`local:${AGENT}`], resources: ['orders'], access: ['read'], maxTtl: '4h', approval: 'none' });
    const startGateway = (name: string) =>
      startGatewayProcess({
        name,
        config,
        agents: [AGENT],
        env: { [PASSWORD_ENV]: db.password, AWS_ACCESS_KEY_ID: 'AKIAAIRLOCKBENCH0001', AWS_SECRET_ACCESS_KEY: 'bench-secret-not-a-real-key', AWS_REGION: 'us-east-1' },
        profileDir: o.profileDir,
      });

    let reading = 0;
    const airlock = await medianOfFresh(FRESH_READINGS, async () => {
      reading++;
      o.progress(`cost: ${SESSIONS} idle sessions through airlock (fresh gateway ${reading} of ${FRESH_READINGS})`);
      const fresh = await startGateway(`cost-idle-${reading}`);
      try {
        const g = await fresh.grant(AGENT, { resource: 'bench', access: 'write', ttl: '1h', task: 'benchmark: idle sessions' });
        const env = g.connect.env;
        const r = await measureIdleSessions(
          { host: env.PGHOST!, port: Number(env.PGPORT), user: g.id, password: g.secret, database: env.PGDATABASE ?? BENCH_DB },
          { rssBytes: () => fresh.rssBytes(), gc: () => fresh.gc() },
          SESSIONS,
        );
        o.progress(`cost: airlock ${r.kibPerSession} KiB per idle session (${r.rssBeforeMiB} → ${r.rssAfterMiB} MiB; JS heap ${r.heapKibPerSession} KiB)`);
        return r;
      } finally {
        await fresh.stop();
      }
    });

    o.progress(`cost: ${SESSIONS} idle sessions through pgbouncer`);
    const bouncer = await startPgbouncer({ binary: o.pgbouncer, upstreamPort: db.cluster.port, database: BENCH_DB, user: BENCH_USER, password: db.password, maxClients: SESSIONS + 60 });
    started.push(bouncer);
    const pgbouncer = await measureIdleSessions({ ...db.direct, host: bouncer.host, port: bouncer.port }, { rssBytes: () => rssBytes(bouncer.pid) }, SESSIONS);
    o.progress(`cost: pgbouncer ${pgbouncer.kibPerSession} KiB per idle session`);
    // Its server connections outlive its clients (session pooling): free them for the relay's.
    started.splice(started.indexOf(bouncer), 1);
    await bouncer.stop();

    // The floor measured the same way: as many fresh relays, the median kept.
    const nodeRelay = await medianOfFresh(FRESH_READINGS, async () => {
      o.progress(`cost: ${SESSIONS} idle sessions through a fresh bare Node relay`);
      const relay = await startFloor('tcp', String(db.cluster.port));
      try {
        const r = await measureIdleSessions({ ...db.direct, host: '127.0.0.1', port: relay.port }, { rssBytes: () => relay.rssBytes(), gc: () => relay.gc() }, SESSIONS);
        o.progress(`cost: node relay ${r.kibPerSession} KiB per idle session (JS heap ${r.heapKibPerSession} KiB)`);
        return r;
      } finally {
        await relay.stop();
      }
    });

    const gw: GatewayProcess = await startGateway('cost');
    started.push(gw);

    const grants: GrantRateResult[] = [];
    for (const body of [
      { resource: 'bench', access: 'write', ttl: '5m', task: 'benchmark: grant issuance' },
      { resource: 'orders', access: 'read', ttl: '5m', task: 'benchmark: grant issuance' },
    ]) {
      const r = await gw.profile(`grants-${body.resource}`, () => measureGrantRate(gw, AGENT, body, { concurrency: 8, seconds: o.seconds }));
      grants.push(r);
      o.progress(`cost: ${r.perSecond} grants/s for ${r.resource} (${r.cpuUsPerGrant} µs CPU each)`);
    }
    return { idleSessions: { airlock, pgbouncer, nodeRelay }, grants };
  } finally {
    for (const s of started.reverse()) await s.stop().catch((e: unknown) => o.progress(`cost: stop failed: ${String(e)}`));
  }
}
