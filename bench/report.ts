/** Turns the measured results into bench/results/latest.md: ratios first, raw figures after. */
import type { MachineInfo } from './lib/machine.ts';
import type { PgCell, PgPartResult, PgTargetName } from './pg/run-pg.ts';
import type { HttpPartResult, HttpTargetName } from './http/run-http.ts';
import type { CostPartResult } from './cost/run-cost.ts';

export interface CodeVersion {
  commit: string;
  /** Files under core/, plugins/, audit-sinks/ that differed from the commit at the start. */
  uncommitted: string[];
  /** Set when the commit or those files changed while the run was measuring. */
  changedDuringRun?: string | undefined;
}

export interface BenchResults {
  generatedAt: string;
  machine: MachineInfo;
  command: string;
  durationSeconds: number;
  code?: CodeVersion | undefined;
  pg?: (PgPartResult & { measuredAt: string }) | undefined;
  http?: (HttpPartResult & { measuredAt: string }) | undefined;
  cost?: (CostPartResult & { measuredAt: string }) | undefined;
}

interface TargetRow {
  target: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
}

const fmt = (v: number | undefined, digits = 1): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const int = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const yes = (met: boolean | undefined): string => (met === undefined ? 'not measured' : met ? '**met**' : '**missed**');

function cellName(c: PgCell): string {
  return `${c.script} · ${c.protocol} · ${c.clients} client${c.clients === 1 ? '' : 's'}`;
}

function targets(r: BenchResults): TargetRow[] {
  const rows: TargetRow[] = [];
  for (const protocol of ['simple', 'prepared'] as const) {
    const cell = r.pg?.cells.find((c) => c.script === 'select-only' && c.clients === 8 && c.protocol === protocol);
    rows.push({
      target: `Postgres select-only, 8 clients, ${protocol}: strict vs pgbouncer TPS`,
      goal: '≥ 0.80×',
      measured: cell ? `${fmt(cell.ratios.strictVsPgbouncer, 2)}×` : '–',
      met: cell ? cell.ratios.strictVsPgbouncer >= 0.8 : undefined,
    });
    rows.push({
      target: `Postgres select-only, 8 clients, ${protocol}: buffered vs pgbouncer TPS`,
      goal: '≥ 0.90×',
      measured: cell ? `${fmt(cell.ratios.bufferedVsPgbouncer, 2)}×` : '–',
      met: cell ? cell.ratios.bufferedVsPgbouncer >= 0.9 : undefined,
    });
  }
  const h = r.http;
  for (const mode of ['buffered', 'strict'] as const) {
    const vs = mode === 'buffered' ? h?.ratios.bufferedVsNginx : h?.ratios.strictVsNginx;
    const added = mode === 'buffered' ? h?.ratios.bufferedAddedP50Ms : h?.ratios.strictAddedP50Ms;
    rows.push({ target: `HTTP GetItem, 8 connections, ${mode}: airlock vs nginx req/s`, goal: '≥ 0.50×', measured: vs === undefined ? '–' : `${fmt(vs, 2)}×`, met: vs === undefined ? undefined : vs >= 0.5 });
    rows.push({ target: `HTTP GetItem, 8 connections, ${mode}: added p50 over direct`, goal: '≤ 0.5 ms', measured: added === undefined ? '–' : `${fmt(added, 3)} ms`, met: added === undefined ? undefined : added <= 0.5 });
  }
  for (const mode of ['buffered', 'strict'] as const) {
    const added = mode === 'buffered' ? h?.ratios.bufferedAddedP50MsOneConnection : h?.ratios.strictAddedP50MsOneConnection;
    rows.push({ target: `(for reference) HTTP GetItem, 1 connection, ${mode}: added p50 over direct`, goal: '≤ 0.5 ms', measured: added === undefined ? '–' : `${fmt(added, 3)} ms`, met: added === undefined ? undefined : added <= 0.5 });
  }
  const idle = r.cost?.idleSessions.airlock;
  rows.push({ target: 'Resident memory per idle Postgres session', goal: '≤ 64 KiB', measured: idle ? `${fmt(idle.kibPerSession)} KiB` : '–', met: idle ? idle.kibPerSession <= 64 : undefined });
  return rows;
}

function pgSection(pg: NonNullable<BenchResults['pg']>): string[] {
  const s = pg.settings;
  const names: PgTargetName[] = ['direct', 'pgbouncer', 'node-relay', 'airlock-buffered', 'airlock-strict'];
  const out = [
    '## Postgres (pgbench)',
    '',
    `Measured ${pg.measuredAt}. Each run ${s.seconds} s, pgbench ${s.pgbenchThreads} thread, scale ${s.scale}, \`-n\`; within each cell the targets ` +
      `run in turn (${names.join(', ')}) for ${s.rounds} rounds; medians shown. TLS ${s.tls}; auth ${s.auth}. ` +
      `airlock records every statement (two records: the statement and its result) with a file sink draining the spool in the same process; pgbouncer runs in session pooling mode. ` +
      '`node-relay` is the floor of airlock\'s runtime: a bare Node TCP relay (`socket.pipe`) doing none of airlock\'s work.',
    '',
    '### Throughput (TPS)',
    '',
    `| cell | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---:').join('|')}|`,
  ];
  for (const c of pg.cells) out.push(`| ${cellName(c)} | ${names.map((n) => int(c.median[n].tps)).join(' | ')} |`);
  out.push(
    '',
    '### Ratios of TPS',
    '',
    '| cell | buffered / pgbouncer | strict / pgbouncer | buffered / direct | strict / direct | node-relay / pgbouncer | buffered / node-relay |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const c of pg.cells) {
    const r = c.ratios;
    out.push(
      `| ${cellName(c)} | ${fmt(r.bufferedVsPgbouncer, 2)} | ${fmt(r.strictVsPgbouncer, 2)} | ${fmt(r.bufferedVsDirect, 2)} | ${fmt(r.strictVsDirect, 2)} | ${fmt(r.nodeRelayVsPgbouncer, 2)} | ${fmt(r.bufferedVsNodeRelay, 2)} |`,
    );
  }
  out.push('', '### Latency per transaction, mean / p99 (ms)', '', `| cell | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`);
  for (const c of pg.cells) out.push(`| ${cellName(c)} | ${names.map((n) => `${fmt(c.median[n].meanMs, 3)} / ${fmt(c.median[n].p99Ms, 3)}`).join(' | ')} |`);
  out.push(
    '',
    '### CPU per statement in the proxy process (µs) and audit records per statement',
    '',
    '| cell | pgbouncer | node-relay | airlock buffered | airlock strict | airlock records / statement |',
    '|---|---:|---:|---:|---:|---:|',
  );
  for (const c of pg.cells) {
    out.push(
      `| ${cellName(c)} | ${fmt(c.median.pgbouncer.cpuUsPerStatement)} | ${fmt(c.median['node-relay'].cpuUsPerStatement)} | ${fmt(c.median['airlock-buffered'].cpuUsPerStatement)} | ${fmt(c.median['airlock-strict'].cpuUsPerStatement)} | ${fmt(c.median['airlock-strict'].auditRecordsPerStatement, 2)} |`,
    );
  }
  const failed = pg.cells.reduce((sum, c) => sum + names.reduce((t, n) => t + c.median[n].failed, 0), 0);
  out.push('', `Failed transactions over all runs: ${failed}.`, '');
  return out;
}

function httpSection(h: NonNullable<BenchResults['http']>): string[] {
  const s = h.settings;
  const names: HttpTargetName[] = ['direct', 'nginx', 'node-floor', 'airlock-buffered', 'airlock-strict'];
  const label: Record<HttpTargetName, string> = {
    direct: 'direct to the responder',
    nginx: 'nginx proxy_pass',
    'node-floor': 'Node floor (Hono + undici, no checks)',
    'airlock-buffered': 'airlock, buffered',
    'airlock-strict': 'airlock, strict',
  };
  const out = [
    '## HTTP (DynamoDB GetItem)',
    '',
    `Measured ${h.measuredAt}. wrk, ${s.wrkThreads} thread, ${s.connections} connections, ${s.seconds} s per run, ${s.rounds} rounds alternating; ` +
      `a pool of ${s.signedPool} GetItem requests SigV4-signed with the grant's key just before each run. The upstream is an nginx ` +
      `responder returning a fixed GetItem answer; nginx (proxy) and nginx (responder) have ${s.nginxWorkers} worker each. ` +
      'airlock verifies the signature, checks scope, records the request and its result with a file sink draining the spool in the same process, signs again and forwards with undici. ' +
      'The Node floor is airlock\'s stack doing none of airlock\'s work: Hono on @hono/node-server reading the body and forwarding it with undici.',
    '',
    '| target | req/s | p50 ms | p99 ms | CPU µs / request | req/s vs nginx | added p50 over direct (ms) |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const n of names) {
    const m = h.median[n];
    const vsNginx = n === 'direct' ? '–' : fmt(m.rps / h.median.nginx.rps, 2);
    const added = n === 'direct' ? '–' : fmt(m.p50Ms - h.median.direct.p50Ms, 3);
    out.push(`| ${label[n]} | ${int(m.rps)} | ${fmt(m.p50Ms, 3)} | ${fmt(m.p99Ms, 3)} | ${fmt(m.cpuUsPerRequest)} | ${vsNginx} | ${added} |`);
  }
  out.push(
    '',
    `At one connection (one ${s.seconds} s run each), where latency is not queueing behind a saturated process:`,
    '',
    '| target | req/s | p50 ms | p99 ms | added p50 over direct (ms) |',
    '|---|---:|---:|---:|---:|',
  );
  for (const n of names) {
    const m = h.oneConnection[n];
    out.push(`| ${label[n]} | ${int(m.rps)} | ${fmt(m.p50Ms, 3)} | ${fmt(m.p99Ms, 3)} | ${n === 'direct' ? '–' : fmt(m.p50Ms - h.oneConnection.direct.p50Ms, 3)} |`);
  }
  const m = h.moto;
  out.push(
    '',
    `airlock buffered reaches ${fmt(h.ratios.bufferedVsNodeFloor, 2)}× the Node floor, which itself reaches ${fmt(h.ratios.nodeFloorVsNginx, 2)}× nginx.`,
    '',
    m === undefined
      ? 'End to end against moto: not measured in this run (`--quick`).'
      : `End to end against moto (DynamoDB with signature and IAM enforcement on, a pool of 100 items; moto is the bottleneck): direct ${int(m.direct.rps)} req/s ` +
        `(p50 ${fmt(m.direct.p50Ms, 2)} ms), through airlock strict ${int(m.airlock.rps)} req/s (p50 ${fmt(m.airlock.p50Ms, 2)} ms), ratio ${fmt(m.ratio, 2)}; ` +
        `airlock used ${fmt(m.airlock.cpuUsPerRequest)} µs CPU per request.`,
    '',
  );
  return out;
}

function costSection(c: NonNullable<BenchResults['cost']>): string[] {
  const a = c.idleSessions.airlock;
  const b = c.idleSessions.pgbouncer;
  const out = [
    '## Cost per unit',
    '',
    `Measured ${c.measuredAt}. CPU per statement and per request: see the tables above (read from /proc/<pid>/stat of the proxy process around each run).`,
    '',
    `| ${a.sessions.toLocaleString('en-US')} idle Postgres sessions | RSS before (MiB) | RSS after (MiB) | per session (KiB) |`,
    '|---|---:|---:|---:|',
    `| airlock (after a full GC) | ${fmt(a.rssBeforeMiB)} | ${fmt(a.rssAfterMiB)} | ${fmt(a.kibPerSession)} |`,
    `| pgbouncer | ${fmt(b.rssBeforeMiB)} | ${fmt(b.rssAfterMiB)} | ${fmt(b.kibPerSession)} |`,
    '',
    '| grant issuance (strict audit) | concurrency | grants | grants / s | CPU µs / grant |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const g of c.grants) out.push(`| ${g.resource === 'bench' ? 'postgres resource (SCRAM verifier)' : 'dynamodb resource'} | ${g.concurrency} | ${int(g.issued)} | ${fmt(g.perSecond)} | ${fmt(g.cpuUsPerGrant)} |`);
  out.push('');
  return out;
}

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const versions = Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ');
  const out = [
    '# airlock benchmarks',
    '',
    `Generated ${r.generatedAt} by \`${r.command}\` (${r.durationSeconds} s). Every figure is airlock beside a peer measured in the same run on the same machine; read the ratios, not the absolute numbers.`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}; ${versions}. The load generator, the proxy and the server share these ${m.cores} cores.`,
    '',
    ...(r.code
      ? [
          `Code measured: commit ${r.code.commit}` +
            (r.code.uncommitted.length > 0 ? ` with uncommitted changes in ${r.code.uncommitted.join(', ')}` : '') +
            (r.code.changedDuringRun ? `; **the code changed during the run** (${r.code.changedDuringRun}), so parts may have measured different versions.` : '.'),
          '',
        ]
      : []),
    '## Targets',
    '',
    '| target | goal | measured | |',
    '|---|---|---:|---|',
    ...targets(r).map((t) => `| ${t.target} | ${t.goal} | ${t.measured} | ${yes(t.met)} |`),
    '',
  ];
  if (r.pg) out.push(...pgSection(r.pg));
  if (r.http) out.push(...httpSection(r.http));
  if (r.cost) out.push(...costSection(r.cost));
  out.push('How to run, what each figure means and what the profiles show: [bench/README.md](../README.md).', '');
  return out.join('\n');
}
