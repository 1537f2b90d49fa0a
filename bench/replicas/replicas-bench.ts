/**
 * `npx tsx bench/replicas/replicas-bench.ts [--sessions N]`: three `airlock serve`
 * replicas on one PostgreSQL store (test/replicas/stack.ts). Measures
 *  - revocation propagation: DELETE /v1/grants/:id on replica C until the FATAL reaches a
 *    psql session held on replica B (the client's stderr), over N sessions;
 *  - grant issuance (POST /v1/grants, serial) on a replica of that stack beside an
 *    in-process gateway on the file store with the same resource.
 */
import { spawnPsql } from '../../test/postgres/fixture.ts';
import { startTestGateway } from '../../test/harness/gateway.ts';
import { api, pgEnv, startStack, waitFor, AGENT_NAME, ADMIN, type Replica } from '../../test/replicas/stack.ts';

const N = Number(process.argv[process.argv.indexOf('--sessions') + 1]) || 200;

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${s.at(-1)!.toFixed(1)} ms (n=${s.length})`;
}

async function oneRevocation(A: Replica, B: Replica, C: Replica, agent: string, admin: string): Promise<number> {
  const g = await api(A, 'POST', '/v1/grants', agent, { resource: 'reporting', access: 'read', ttl: '5m', task: 'bench' });
  if (g.status !== 201) throw new Error(`grant: ${g.status} ${JSON.stringify(g.body)}`);
  const env = (g.body.connect as { env: Record<string, string> }).env;
  const child = spawnPsql(pgEnv(env, B), []);
  let out = '';
  let fatalAt = 0;
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    if (!fatalAt && /revoked/.test(d.toString())) fatalAt = performance.now();
  });
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  child.stdin!.end('select 1;\nselect pg_sleep(60);\n');
  await waitFor('psql on B', () => (out.includes('1') ? true : undefined), 20_000);
  await new Promise((r) => setTimeout(r, 20)); // pg_sleep under way
  const t0 = performance.now();
  const res = await api(C, 'DELETE', `/v1/grants/${String(g.body.id)}`, admin);
  if (res.status !== 200) throw new Error(`revoke: ${res.status}`);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (!fatalAt) {
    child.kill('SIGKILL');
    throw new Error('no FATAL within 10 s');
  }
  return fatalAt - t0;
}

async function issuance(request: () => Promise<number>): Promise<string> {
  const ms: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const status = await request();
    if (status !== 201) throw new Error(`grant: ${status}`);
    ms.push(performance.now() - t0);
  }
  return summary(ms);
}

const stack = await startStack();
try {
  const [A, B, C] = stack.replicas as [Replica, Replica, Replica];
  const agent = await stack.token(A, AGENT_NAME);
  const admin = await stack.token(C, ADMIN);
  const prop: number[] = [];
  for (let i = 0; i < N; i++) prop.push(await oneRevocation(A, B, C, agent, admin));
  console.log(`revocation propagation C → session on B: ${summary(prop)}`);
  console.log(`grant issuance, PostgreSQL store (replica A): ${await issuance(async () => (await api(A, 'POST', '/v1/grants', agent, { resource: 'reporting', access: 'read', ttl: '5m', task: 'bench' })).status)}`);
  const yaml = (await import('node:fs')).readFileSync(A.configPath, 'utf8').replace(/^store:.*$/m, '').replace(/^gateway:\n(?:  .*\n)+/m, 'gateway:\n  postgres: { listen: 127.0.0.1:0, tls: self-signed }\n');
  const fileGw = await startTestGateway({ yaml, env: { AIRLOCK_TEST_PG_PW: String(stack.env.AIRLOCK_TEST_PG_PW) } });
  try {
    const token = await fileGw.tokenFor(AGENT_NAME);
    console.log(`grant issuance, file store (in-process gateway): ${await issuance(async () => (await fileGw.requestGrant(token, { resource: 'reporting', access: 'read', ttl: '5m', task: 'bench' })).status)}`);
  } finally {
    await fileGw.close();
  }
} finally {
  await stack.close();
}
