/**
 * `npx tsx bench/mcp/query.ts [--calls N] [--seconds S] [--workers W]`
 *
 * MCP `query_postgres` beside the ordinary clients through the postgres listener, on one
 * throwaway PostgreSQL and an in-process gateway (strict audit):
 *   - latency of N sequential calls of `select 1` (p50/p95/p99), and throughput with W
 *     concurrent workers for S seconds, for the 2.x client (2026-07-28) and the 1.x client;
 *   - postgres.js through the listener: the same query on one open connection, and
 *     connect + query + close per call (what an MCP call does: one session per call);
 *   - psql -c 'select 1' per call (process start, TLS, SCRAM login, query).
 * Each MCP worker is its own agent: the per-agent rate limit (600/min) is not what is measured.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { startCluster, gatewayYaml, ROLE_PASSWORD } from '../../test/postgres/fixture.ts';
import { startTestGateway } from '../../test/harness/gateway.ts';
import { connectClient, type ClientLine } from '../../test/mcp/clients.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const CALLS = arg('calls', 200);
const SECONDS = arg('seconds', 5);
const WORKERS = arg('workers', 4);

function stats(ms: number[]): { p50: number; p95: number; p99: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 100) / 100;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), mean: Math.round((s.reduce((a, b) => a + b, 0) / s.length) * 100) / 100 };
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

async function throughput(workers: number, seconds: number, worker: (i: number) => Promise<() => Promise<unknown>>): Promise<number> {
  const fns = await Promise.all(Array.from({ length: workers }, (_, i) => worker(i)));
  const until = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(fns.map(async (fn) => {
    while (performance.now() < until) {
      await fn();
      done++;
    }
  }));
  return Math.round((done / seconds) * 10) / 10;
}

const cluster = await startCluster();
const yaml = gatewayYaml(cluster).replace(/policies:\n(  - .*\n)+/, "policies:\n  - { agents: ['local:bench-*', 'local:report-bot'], resources: [reporting], access: [read], maxTtl: 15m, approval: none }\n");
const gw = await startTestGateway({ yaml, env: { AIRLOCK_TEST_PG_PW: ROLE_PASSWORD }, config: undefined });
const results: Record<string, unknown> = { calls: CALLS, seconds: SECONDS, workers: WORKERS };
try {
  const listen = gw.listening.postgres![0]!;
  const [host, port] = [listen.slice(0, listen.lastIndexOf(':')), Number(listen.slice(listen.lastIndexOf(':') + 1))];

  const mcpCaller = async (line: ClientLine, agent: string) => {
    const c = await connectClient(line, `${gw.url}/mcp`, await gw.tokenFor(agent));
    const g = await c.call('request_grant', { resource: 'reporting', access: 'read', ttl: '10m', task: 'bench' });
    const id = String((g.structured.grant as Record<string, unknown>).id);
    return {
      c,
      call: async () => {
        const r = await c.call('query_postgres', { grant_id: id, sql: 'select 1' });
        if (r.isError) throw new Error(r.text);
      },
    };
  };
  for (const line of ['client-2.x-2026-07-28', 'sdk-1.x'] as const) {
    console.error(`bench: ${line}`);
    const one = await mcpCaller(line, `bench-${line}-seq`);
    await timed(10, one.call);
    results[`mcp ${line} latency ms`] = stats(await timed(CALLS, one.call));
    await one.c.close();
    results[`mcp ${line} calls/s (${WORKERS} workers)`] = await throughput(WORKERS, SECONDS, async (i) => (await mcpCaller(line, `bench-${line}-w${i}`)).call);
  }

  const issued = await gw.requestGrant(await gw.tokenFor('report-bot'), { resource: 'reporting', access: 'read', ttl: '10m', task: 'bench psql' });
  const secret = String(issued.body.secret);
  const id = String(issued.body.id);
  const pgOpts = { host, port, database: 'reporting', username: id, password: secret, ssl: { rejectUnauthorized: false }, max: 1, prepare: false, onnotice: () => {} };
  const open = postgres(pgOpts);
  await timed(10, () => open.unsafe('select 1'));
  results['postgres.js open connection latency ms'] = stats(await timed(CALLS, () => open.unsafe('select 1')));
  await open.end();
  results['postgres.js connect+query+close latency ms'] = stats(await timed(Math.min(CALLS, 100), async () => {
    const sql = postgres(pgOpts);
    await sql.unsafe('select 1');
    await sql.end();
  }));
  results[`postgres.js open connection queries/s (${WORKERS} connections)`] = await throughput(WORKERS, SECONDS, async () => {
    const sql = postgres(pgOpts);
    return () => sql.unsafe('select 1');
  });
  const env = { ...process.env, PGHOST: host, PGPORT: String(port), PGUSER: id, PGPASSWORD: secret, PGDATABASE: 'reporting', PGSSLMODE: 'require' };
  results['psql -c per call latency ms'] = stats(await timed(Math.min(CALLS, 50), async () => {
    // Asynchronously: the gateway serving psql runs in this process.
    await promisify(execFile)('psql', ['-Atqc', 'select 1'], { env });
  }));
} finally {
  await gw.close();
  await cluster.stop();
}
console.log(JSON.stringify(results, null, 2));
