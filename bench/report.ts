/** Turns the measured results into bench/results/latest.md: ratios first, raw figures after. */
import type { MachineInfo } from './lib/machine.ts';
import type { PgCell, PgPartResult, PgTargetName } from './pg/run-pg.ts';
import type { HttpPartResult, HttpTargetName } from './http/run-http.ts';
import type { CostPartResult } from './cost/run-cost.ts';
import type { WorkPartResult } from './work/run-work.ts';
import { MAX_ATTEMPTS, STEAL_LIMIT_PCT } from './lib/quiet.ts';

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
  work?: (WorkPartResult & { measuredAt: string }) | undefined;
}

interface TargetRow {
  target: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
  /** The same measure of the floor (airlock's runtime doing none of its work), when there is one. */
  floor: string;
  /** The floor plus the work airlock must do, measured alone (bench/work): the best airlock could reach. */
  bound: string;
}

const fmt = (v: number | undefined, digits = 1): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const int = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const yes = (met: boolean | undefined): string => (met === undefined ? 'not measured' : met ? '**met**' : '**missed**');

function cellName(c: PgCell): string {
  return `${c.script} · ${c.protocol} · ${c.clients} client${c.clients === 1 ? '' : 's'}`;
}

/** One row: `measured` undefined when the part was not run. */
type Figure = { label: string; value: number | undefined };

function row(target: string, goal: string, measured: number | undefined, unit: '×' | 'ms' | 'µs' | 'KiB', met: (v: number) => boolean, floor?: Figure, bound?: Figure): TargetRow {
  const show = (v: number | undefined): string => {
    const digits = unit === '×' ? 2 : unit === 'ms' ? 3 : 1;
    return v === undefined || !Number.isFinite(v) ? '–' : unit === '×' ? `${fmt(v, digits)}×` : `${fmt(v, digits)} ${unit}`;
  };
  const shown = (f: Figure | undefined): string =>
    f === undefined || f.value === undefined || !Number.isFinite(f.value) ? '–' : `${f.label} ${show(f.value)}${met(f.value) ? '' : ' (misses it too)'}`;
  return { target, goal, measured: show(measured), met: measured === undefined || !Number.isFinite(measured) ? undefined : met(measured), floor: shown(floor), bound: shown(bound) };
}

/** The targets of issue 13 ("Hot paths"), in its order. */
function targets(r: BenchResults): TargetRow[] {
  const cell = (protocol: 'simple' | 'prepared', clients: number) => r.pg?.cells.find((c) => c.script === 'select-only' && c.clients === clients && c.protocol === protocol);
  const simple8 = cell('simple', 8);
  const prepared8 = cell('prepared', 8);
  const simple1 = cell('simple', 1);
  const fsyncP50 = r.pg?.fdatasync?.p50Ms;
  const strictOverBuffered = simple1 ? simple1.median['airlock-strict'].meanMs - simple1.median['airlock-buffered'].meanMs : undefined;
  const h = r.http?.ratios;
  const idle = r.cost?.idleSessions.airlock;
  const relay = (c: PgCell | undefined) => ({ label: 'node relay', value: c?.ratios.nodeRelayVsPgbouncer });
  const one = r.http?.oneConnection;
  const floorAddedP50 = one ? { label: 'Node floor', value: one['node-floor'].p50Ms - one.direct.p50Ms } : undefined;
  // The bound: the floor's figure with airlock's necessary work (bench/work) added to it.
  const work = r.work?.cpuUsPerOperation;
  const plus = (value: number | undefined, addedMs: number | undefined) => (value === undefined || addedMs === undefined ? undefined : value + addedMs);
  const statementMs = work ? work.statement! / 1000 : undefined;
  const getItemMs = work ? work.getitem! / 1000 : undefined;
  const floorCpu = r.http?.median['node-floor'].cpuUsPerRequest;
  // airlock's rate is bounded by the CPU it got per second in that run (its one JS thread is
  // what saturates) divided by what a request must cost it at least: the floor's CPU plus
  // the work; over the floor's own rate.
  const getItemRatio = (name: 'airlock-buffered' | 'airlock-strict') => {
    const m = r.http?.median;
    const cpuPerRequest = m?.[name].cpuUsPerRequest;
    const value = m && floorCpu !== undefined && cpuPerRequest !== undefined && work ? (cpuPerRequest * m[name].rps) / (floorCpu + work.getitem!) / m['node-floor'].rps : undefined;
    return { label: 'the CPU airlock got per second / (floor CPU + work), over the floor\'s req/s', value };
  };
  // strict holds each statement until an fdatasync that began after its record was written
  // has returned, so one client runs at most one statement per such sync: the spool's own mean
  // sync time in that very run (under the run's load) caps TPS at clients / sync.
  const strictCap = (c: PgCell | undefined) => {
    const syncMs = c?.median['airlock-strict'].fsyncMeanMs;
    return { label: `${c?.clients ?? '–'} clients / the spool's own fdatasync mean in that run (${syncMs === undefined ? '–' : fmt(syncMs, 3)} ms), over pgbouncer`, value: c && syncMs ? c.clients / (syncMs / 1000) / c.median.pgbouncer.tps : undefined };
  };
  const relayAdded = simple1 ? simple1.median['node-relay'].meanMs - simple1.median.pgbouncer.meanMs : undefined;
  return [
    row('pg select-only, 8 clients, simple: buffered / pgbouncer TPS', '≥ 0.80×', simple8?.ratios.bufferedVsPgbouncer, '×', (v) => v >= 0.8, relay(simple8)),
    row('pg select-only, 8 clients, prepared: buffered / pgbouncer TPS', '≥ 0.80×', prepared8?.ratios.bufferedVsPgbouncer, '×', (v) => v >= 0.8, relay(prepared8)),
    row('pg select-only, 8 clients, simple: strict / pgbouncer TPS', '≥ 0.65×', simple8?.ratios.strictVsPgbouncer, '×', (v) => v >= 0.65, relay(simple8), strictCap(simple8)),
    row('pg select-only, 8 clients, prepared: strict / pgbouncer TPS', '≥ 0.65×', prepared8?.ratios.strictVsPgbouncer, '×', (v) => v >= 0.65, relay(prepared8), strictCap(prepared8)),
    row('pg select-only, 1 client, simple: buffered added mean latency over pgbouncer', '≤ 0.05 ms', simple1 ? simple1.median['airlock-buffered'].meanMs - simple1.median.pgbouncer.meanMs : undefined, 'ms', (v) => v <= 0.05, { label: 'node relay', value: relayAdded }, { label: 'relay + work', value: plus(relayAdded, statementMs) }),
    row(
      `pg select-only, 1 client, simple: strict added mean over buffered`,
      `≤ one fdatasync p50 (${fsyncP50 === undefined ? '–' : `${fmt(fsyncP50, 3)} ms`}, same run)`,
      strictOverBuffered,
      'ms',
      (v) => fsyncP50 !== undefined && v <= fsyncP50,
      { label: 'the spool\'s own fdatasync in those strict runs, mean', value: simple1?.median['airlock-strict'].fsyncMeanMs },
    ),
    row('CPU per statement, select-only, 8 clients, simple, buffered', '≤ 40 µs', simple8?.median['airlock-buffered'].cpuUsPerStatement, 'µs', (v) => v <= 40, { label: 'node relay', value: simple8?.median['node-relay'].cpuUsPerStatement }, { label: 'relay + work', value: plus(simple8?.median['node-relay'].cpuUsPerStatement, work?.statement) }),
    row('DynamoDB GetItem, 8 connections: buffered / Node floor req/s', '≥ 0.70×', h?.bufferedVsNodeFloor, '×', (v) => v >= 0.7, undefined, getItemRatio('airlock-buffered')),
    row('DynamoDB GetItem, 8 connections: strict / Node floor req/s', '≥ 0.55×', h?.strictVsNodeFloor, '×', (v) => v >= 0.55, undefined, getItemRatio('airlock-strict')),
    row('GetItem, 1 connection, buffered: added p50 over direct', '≤ 0.20 ms', h?.bufferedAddedP50MsOneConnection, 'ms', (v) => v <= 0.2, floorAddedP50, { label: 'floor + work', value: plus(floorAddedP50?.value, getItemMs) }),
    row('GetItem, 1 connection, strict: added p50 over direct', '≤ 0.35 ms', h?.strictAddedP50MsOneConnection, 'ms', (v) => v <= 0.35, floorAddedP50, { label: 'floor + work + one fdatasync p50', value: plus(plus(floorAddedP50?.value, getItemMs), fsyncP50) }),
    row('Resident memory per idle Postgres session', '≤ 24 KiB', idle?.kibPerSession, 'KiB', (v) => v <= 24, r.cost?.idleSessions.nodeRelay ? { label: 'node relay', value: r.cost.idleSessions.nodeRelay.kibPerSession } : { label: 'pgbouncer', value: r.cost?.idleSessions.pgbouncer.kibPerSession }),
  ];
}

function pgSection(pg: NonNullable<BenchResults['pg']>): string[] {
  const s = pg.settings;
  const names: PgTargetName[] = ['direct', 'pgbouncer', 'node-relay', 'airlock-buffered', 'airlock-strict'];
  const out = [
    '## Postgres (pgbench)',
    '',
    `Measured ${pg.measuredAt}. Each run ${s.seconds} s, pgbench ${s.pgbenchThreads} thread, scale ${s.scale}, \`-n\`; within each cell the targets ` +
      `run in turn (${names.join(', ')}) for ${s.rounds} rounds${s.order ? `, the order ${s.order}` : ''}; medians shown. TLS ${s.tls}; auth ${s.auth}. ` +
      `airlock records every statement (its pg.query, written before it is forwarded, carries the outcome of the session's previous statement; an idle session's last outcome is a pg.result of its own) with a file sink draining the spool in the same process; pgbouncer runs in session pooling mode. ` +
      '`node-relay` is the floor of airlock\'s runtime: a bare Node TCP relay (`socket.pipe`) doing none of airlock\'s work.',
    ...(pg.fdatasync
      ? [
          '',
          `One record-sized write + \`fdatasync\` on the spool's disk, as the spool does it (in place over its preallocated zeros; ${pg.fdatasync.samples} samples, probed before and after the cells, the slower kept): p50 ${fmt(pg.fdatasync.p50Ms, 3)} ms, p99 ${fmt(pg.fdatasync.p99Ms, 3)} ms` +
            (pg.fdatasync.appendP50Ms !== undefined ? `; appending to a growing file instead: p50 ${fmt(pg.fdatasync.appendP50Ms, 3)} ms, p99 ${fmt(pg.fdatasync.appendP99Ms, 3)} ms.` : '.'),
        ]
      : []),
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
    '### CPU per statement in the proxy process (µs), audit records and strict fsyncs per statement',
    '',
    'Each airlock figure is followed by its rounds in brackets: one cell can move by half between rounds on this machine, and the rounds show whether a median is one of them. Strict fsyncs per statement are the spool\'s own fdatasyncs (its /metrics count) over the statements of the run, and their mean latency: one group commit serves every statement whose record waits when it starts. The last column is the highest steal time of any run in the cell (below).',
    '',
    '| cell | pgbouncer | node-relay | airlock buffered | airlock strict | airlock records / statement | strict fsyncs / statement (mean ms) | highest steal (%) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  const rounds = (c: PgCell, n: PgTargetName): string => ` (${c.runs[n].map((r) => fmt(r.cpuUsPerStatement, 0)).join(', ')})`;
  for (const c of pg.cells) {
    out.push(
      `| ${cellName(c)} | ${fmt(c.median.pgbouncer.cpuUsPerStatement)} | ${fmt(c.median['node-relay'].cpuUsPerStatement)} | ${fmt(c.median['airlock-buffered'].cpuUsPerStatement)}${rounds(c, 'airlock-buffered')} | ${fmt(c.median['airlock-strict'].cpuUsPerStatement)}${rounds(c, 'airlock-strict')} | ${fmt(c.median['airlock-strict'].auditRecordsPerStatement, 2)} | ${fmt(c.median['airlock-strict'].fsyncsPerStatement, 2)} (${fmt(c.median['airlock-strict'].fsyncMeanMs, 3)}) | ${fmt(highest(names.flatMap((n) => c.runs[n].map((r) => r.stealPct))))} |`,
    );
  }
  out.push('', stealLine(pg.cells.flatMap((c) => names.flatMap((n) => c.runs[n].map((r, i) => ({ steal: r.stealPct, attempts: r.attempts, where: `${cellName(c)}, ${n}, round ${i + 1}` }))))));
  const failed = pg.cells.reduce((sum, c) => sum + names.reduce((t, n) => t + c.median[n].failed, 0), 0);
  out.push('', `Failed transactions over all runs: ${failed}.`, '');
  return out;
}

function highest(values: Array<number | undefined>): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length === 0 ? undefined : Math.max(...known);
}

/** The machine's steal time over a part's runs, or why it is not shown. */
function stealLine(runs: Array<{ steal: number | undefined; attempts: number | undefined; where: string }>): string {
  const known = runs.filter((r): r is { steal: number; attempts: number | undefined; where: string } => r.steal !== undefined);
  if (known.length === 0) return 'Steal time: not measured in this run.';
  const sorted = known.map((r) => r.steal).sort((a, b) => a - b);
  const top = known.reduce((a, b) => (b.steal > a.steal ? b : a));
  const retaken = known.filter((r) => (r.attempts ?? 1) > 1);
  const extra = retaken.reduce((sum, r) => sum + (r.attempts ?? 1) - 1, 0);
  return (
    `Steal time (the share of this virtual machine's CPU time the hypervisor gave to someone else during a run, from /proc/stat), of the ${known.length} runs kept: ` +
    `median ${fmt(sorted[Math.floor(sorted.length / 2)])}%, highest ${fmt(top.steal)}% (${top.where}). ` +
    (known.some((r) => r.attempts !== undefined)
      ? `A run with more than ${STEAL_LIMIT_PCT}% steal was taken again, up to ${MAX_ATTEMPTS} attempts, and the quietest kept, for every target alike: ${retaken.length} of these runs were retaken (${extra} extra runs). `
      : '') +
    'A run with steal ran on a slower machine than the runs beside it; a busy neighbour also takes cache and memory bandwidth, which steal does not show, so a quiet steal figure does not prove a quiet machine.'
  );
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
    `Measured ${h.measuredAt}. wrk, ${s.wrkThreads} thread, ${s.connections} connections, ${s.seconds} s per run, ${s.rounds} rounds alternating${s.order ? ` (the order ${s.order})` : ''}; ` +
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
  out.push(
    '',
    stealLine([
      ...names.flatMap((n) => h.runs[n].map((r, i) => ({ steal: r.stealPct, attempts: r.attempts, where: `8 connections, ${label[n]}, round ${i + 1}` }))),
      ...names.map((n) => ({ steal: h.oneConnection[n].stealPct, attempts: h.oneConnection[n].attempts, where: `1 connection, ${label[n]}` })),
    ]),
  );
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

/** ` (readings a, b, c)` when the figure is a median of fresh-process readings. */
function readings(r: { readings?: number[] | undefined }): string {
  return r.readings === undefined ? '' : ` (${r.readings.map((v) => fmt(v)).join(', ')})`;
}

function discardedText(who: string, r: { discarded?: number[] | undefined } | undefined): string {
  const d = r?.discarded ?? [];
  return d.length === 0 ? `none for ${who}` : `${who} ${d.length} (${d.map((v) => fmt(v)).join(', ')} KiB)`;
}

function costSection(c: NonNullable<BenchResults['cost']>): string[] {
  const a = c.idleSessions.airlock;
  const b = c.idleSessions.pgbouncer;
  const n = c.idleSessions.nodeRelay;
  const out = [
    '## Cost per unit',
    '',
    `Measured ${c.measuredAt}. CPU per statement and per request: see the tables above (read from /proc/<pid>/stat of the proxy process around each run).`,
    '',
    `| ${a.sessions.toLocaleString('en-US')} idle Postgres sessions | RSS before (MiB) | RSS after (MiB) | per session (KiB) | of it, JS heap (KiB) |`,
    '|---|---:|---:|---:|---:|',
    `| airlock (after a full GC) | ${fmt(a.rssBeforeMiB)} | ${fmt(a.rssAfterMiB)} | ${fmt(a.kibPerSession)}${readings(a)} | ${a.heapKibPerSession === undefined ? '–' : fmt(a.heapKibPerSession)} |`,
    `| pgbouncer | ${fmt(b.rssBeforeMiB)} | ${fmt(b.rssAfterMiB)} | ${fmt(b.kibPerSession)} | – |`,
    ...(n === undefined ? [] : [`| node relay (after a full GC) | ${fmt(n.rssBeforeMiB)} | ${fmt(n.rssAfterMiB)} | ${fmt(n.kibPerSession)}${readings(n)} | ${n.heapKibPerSession === undefined ? '–' : fmt(n.heapKibPerSession)} |`]),
    '',
    ...(a.readings === undefined
      ? []
      : [
          `airlock and the relay are each measured on ${a.readings.length} fresh processes and the median reading kept (its RSS before and after shown); the readings are in brackets. One reading moves by a third between processes while the heap's share stays within a few tenths of a KiB. ` +
            `A reading whose RSS grew less than its own JS heap did (the process gave back memory it held before the sessions) is set aside and taken again on another fresh process: ` +
            `${discardedText('airlock', a)}; ${discardedText('the relay', n)}.`,
          '',
        ]),
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
    '| target | goal | measured | | the same measure of the floor, same run | the floor plus airlock\'s necessary work (bound) |',
    '|---|---|---:|---|---|---|',
    ...targets(r).map((t) => `| ${t.target} | ${t.goal} | ${t.measured} | ${yes(t.met)} | ${t.floor} | ${t.bound} |`),
    '',
    'The floor is airlock\'s runtime doing none of airlock\'s work (a bare Node TCP relay for Postgres, Hono + undici forwarding for HTTP; the same relay, and pgbouncer, for idle memory). ' +
      'Where the floor misses a target too, no Node process on this machine meets it; the rest is airlock\'s own cost (bench/README.md says what the profiles show of it). ' +
      'The bound adds to the floor the work airlock must do for each operation (the guardrail\'s decision and the audit record of a statement; SigV4 verification, the decision, two records and the outbound signature of a GetItem), measured alone in one process with airlock\'s own functions (`bench/work/measure.ts`, section below): where the bound misses a target, no change to the rest of airlock meets it on this machine: only making that work itself cheaper could, and the section below says what each stage of it costs.',
    '',
  ];
  if (r.pg) out.push(...pgSection(r.pg));
  if (r.http) out.push(...httpSection(r.http));
  if (r.cost) out.push(...costSection(r.cost));
  if (r.work) out.push(...workSection(r.work));
  out.push('How to run, what each figure means and what the profiles show: [bench/README.md](../README.md).', '');
  return out.join('\n');
}

function workSection(w: NonNullable<BenchResults['work']>): string[] {
  const f = w.cpuUsPerOperation;
  const stage = (name: string) => fmt(f[name], 1);
  return [
    '## Airlock\'s necessary work, measured alone (the bound)',
    '',
    `Measured ${w.measuredAt}: \`bench/work/measure.ts\` in a process of its own, no sockets, eight operations per event-loop turn, ${w.operationsPerRound.toLocaleString('en-US')} operations per stage and round, median of ${w.rounds} rounds; CPU µs (user + system) per operation. ` +
      'Only work no runtime choice removes: framing, relaying, HTTP parsing and forwarding are the floor\'s and not counted.',
    '',
    '| operation | stages (µs each) | whole chain (µs) |',
    '|---|---|---:|',
    `| Postgres statement (pgbench -S text) | guardrail decision (cache by shape) ${stage('statement.guard')}, \`pg.query\` record through the pipeline ${stage('statement.record')} | ${stage('statement')} |`,
    `| DynamoDB GetItem | SigV4 verification ${stage('getitem.verify')}, body parse + decision ${stage('getitem.decide')}, request and response records ${stage('getitem.records')}, outbound signature ${stage('getitem.sign')} | ${stage('getitem')} |`,
    '',
  ];
}
