/**
 * Console page latency with 10,000 grants and 100,000 audit records (issue 16: pages
 * should answer in under 100 ms; measured, not asserted). A real gateway starts on a
 * dataDir prepared beforehand: a grant log of 10,000 grants and a spool of 100,000 records
 * written by the real audit pipeline. Each page is fetched over HTTP with a signed-in
 * session, sequentially, after a warm-up.
 *
 *   node --import tsx bench/console/run-console.ts [--grants 10000] [--records 100000] [--n 40]
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { fetch } from 'undici';
import { startGateway } from '../../core/hub.ts';
import { loadOrCreateGatewayIdentity } from '../../core/identity/gateway-key.ts';
import { mintAgentToken } from '../../core/identity/local-issuer.ts';
import { AuditPipeline } from '../../core/audit/pipeline.ts';
import type { GrantRecord } from '../../core/grants/record.ts';
import type { GrantStatus } from '../../core/plugin.ts';
import { plugins } from '../../plugins/index.ts';
import { sinks } from '../../audit-sinks/index.ts';
import { percentileSorted, median, round } from '../lib/stats.ts';

const { values: args } = parseArgs({ options: { grants: { type: 'string', default: '10000' }, records: { type: 'string', default: '100000' }, n: { type: 'string', default: '40' } } });
const GRANTS = Number(args.grants);
const RECORDS = Number(args.records);
const N = Number(args.n);
const AGENTS = Array.from({ length: 50 }, (_, i) => `local:agent-${i}`);

function grantLog(now: number): { lines: string; ids: string[] } {
  const statuses: GrantStatus[] = ['expired', 'revoked', 'denied', 'expired', 'expired'];
  const ids: string[] = [];
  let lines = '';
  for (let i = 0; i < GRANTS; i++) {
    const id = `AGBENCH${String(i).padStart(9, '0')}`;
    ids.push(id);
    const status: GrantStatus = i < 50 ? 'pending' : i < 250 ? 'active' : statuses[i % statuses.length]!;
    const created = now - 3_600_000 + i * 100;
    const rec: GrantRecord = {
      id,
      agent: AGENTS[i % AGENTS.length]!,
      resource: i % 3 === 0 ? 'orders' : 'reporting',
      resourceType: 'postgres',
      access: i % 4 === 0 ? 'write' : 'read',
      scope: { database: 'reporting', tables: ['revenue'] },
      task: `bench task ${i}: monthly revenue summary`,
      status,
      createdAt: new Date(created).toISOString(),
      approvedAt: null,
      approvedBy: null,
      expiresAt: status === 'pending' ? null : new Date(status === 'active' ? now + 600_000 : created + 300_000).toISOString(),
      pendingUntil: status === 'pending' ? new Date(now + 86_400_000).toISOString() : null,
      ttlMs: 300_000,
      revokedAt: status === 'revoked' ? new Date(created + 60_000).toISOString() : null,
      revokedBy: status === 'revoked' ? 'local:ops' : null,
      policy: 0,
      verifiers: {},
    };
    lines += JSON.stringify(rec) + '\n';
  }
  return { lines, ids };
}

async function fillSpool(dataDir: string, ids: string[]): Promise<void> {
  const identity = await loadOrCreateGatewayIdentity(dataDir);
  const audit = await AuditPipeline.open({
    dataDir,
    durability: 'buffered',
    gatewayId: identity.gatewayId,
    signingKey: { privateKey: identity.key.signingKey, kid: identity.key.kid },
    log: pino({ level: 'silent' }),
  });
  const types = ['pg.query', 'pg.result', 'pg.query', 'pg.result', 'aws.request', 'session.opened', 'session.closed', 'grant.issued'];
  for (let i = 0; i < RECORDS; i++) {
    const grant = ids[i % ids.length]!;
    const receipt = audit.append({
      type: i % 997 === 0 ? 'grant.approved' : types[i % types.length]!,
      agent: AGENTS[(i >> 3) % AGENTS.length]!,
      grant,
      resource: i % 3 === 0 ? 'orders' : 'reporting',
      session: `s_bench${(i >> 5) % 5000}`,
      task: 'bench',
      data: { sql: `select * from revenue where id = ${i}`, rows: i % 17, ms: 0.4 },
      outcome: 'ok',
    });
    if (i % 5000 === 4999) await receipt.spooled;
  }
  await audit.close();
}

async function signIn(url: string, token: string): Promise<string> {
  const form = await fetch(`${url}/console/signin`);
  const pre = /airlock_console_pre=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]!;
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const res = await fetch(`${url}/console/signin`, {
    method: 'POST',
    redirect: 'manual',
    headers: { origin: url, cookie: `airlock_console_pre=${pre}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, token }).toString(),
  });
  const session = /airlock_console=([^;]+)/.exec(res.headers.get('set-cookie') ?? '');
  if (res.status !== 303 || !session) throw new Error(`sign-in failed: HTTP ${res.status}`);
  return `airlock_console=${session[1]}`;
}

async function measure(url: string, cookie: string, path: string): Promise<{ path: string; bytes: number; p50: number; p95: number; max: number }> {
  const once = async () => {
    const t = performance.now();
    const res = await fetch(`${url}${path}`, { headers: { cookie } });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
    return { ms: performance.now() - t, bytes: body.length };
  };
  for (let i = 0; i < 5; i++) await once();
  const samples: number[] = [];
  let bytes = 0;
  for (let i = 0; i < N; i++) {
    const r = await once();
    samples.push(r.ms);
    bytes = r.bytes;
  }
  samples.sort((a, b) => a - b);
  return { path, bytes, p50: round(median(samples), 1), p95: round(percentileSorted(samples, 95), 1), max: round(samples.at(-1)!, 1) };
}

async function main(): Promise<void> {
  process.env.BENCH_UNUSED_PW ??= 'unused'; // the resources exist for grants; nothing connects upstream
  const dataDir = mkdtempSync(join(tmpdir(), 'airlock-bench-console-'));
  try {
    const { lines, ids } = grantLog(Date.now());
    writeFileSync(join(dataDir, 'grants.jsonl'), lines, { mode: 0o600 });
    let t = performance.now();
    await fillSpool(dataDir, ids);
    console.log(`prepared ${GRANTS} grants and ${RECORDS} audit records in ${Math.round(performance.now() - t)} ms`);

    t = performance.now();
    const gw = await startGateway({
      config: {
        gateway: { dataDir, http: { listen: '127.0.0.1:0' } },
        identity: { issuers: [{ name: 'local', type: 'local' }], admins: ['local:ops'] },
        resources: {
          reporting: { type: 'postgres', host: '127.0.0.1', port: 1, database: 'reporting', tls: 'disable', auth: { type: 'password', passwordEnv: 'BENCH_UNUSED_PW' }, access: { read: { user: 'r' }, write: { user: 'w' } } },
          orders: { type: 'postgres', host: '127.0.0.1', port: 1, database: 'orders', tls: 'disable', auth: { type: 'password', passwordEnv: 'BENCH_UNUSED_PW' }, access: { read: { user: 'r' }, write: { user: 'w' } } },
        },
        audit: { durability: 'buffered' },
      },
      plugins,
      sinks,
      log: pino({ level: 'silent' }),
    });
    try {
      const cookie = await signIn(gw.url, await mintAgentToken(gw.identity, 'ops', 3_600_000));
      // The index is fed from the spool at start: wait until it holds every record.
      for (;;) {
        const page = await (await fetch(`${gw.url}/console/audit`, { headers: { cookie } })).text();
        const head = Number(/Head seq (\d+)/.exec(page)?.[1] ?? 0);
        if (head >= RECORDS) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      console.log(`gateway up and console index caught up in ${Math.round(performance.now() - t)} ms`);
      const paths = [
        '/console',
        '/console?agent=local:agent-7&status=expired&page=2',
        `/console/grants/${ids[4321]}`,
        '/console/sessions',
        '/console/audit',
        '/console/audit?agent=local:agent-3',
        '/console/audit?type=grant.approved',
        `/console/audit?grant=${ids[42]}`,
        '/console/audit?resource=orders&type=pg.query&before=50000',
        `/console/audit?since=${encodeURIComponent(new Date(Date.now() - 600_000).toISOString())}&type=aws.request`,
      ];
      const results = [];
      for (const p of paths) results.push(await measure(gw.url, cookie, p));
      console.log('\npage                                                              p50 ms  p95 ms  max ms  KiB');
      for (const r of results) console.log(`${r.path.slice(0, 64).padEnd(66)}${String(r.p50).padStart(6)}  ${String(r.p95).padStart(6)}  ${String(r.max).padStart(6)}  ${Math.round(r.bytes / 1024)}`);
      const out = resolve(import.meta.dirname, '../results/console.json');
      mkdirSync(resolve(import.meta.dirname, '../results'), { recursive: true });
      writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), grants: GRANTS, records: RECORDS, n: N, results }, null, 2) + '\n');
      console.log(`\nwritten to ${out}`);
    } finally {
      await gw.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
