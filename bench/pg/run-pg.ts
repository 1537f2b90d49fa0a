/**
 * The Postgres part: pgbench against PostgreSQL directly, through pgbouncer (session
 * pooling), through a bare Node TCP relay (the floor of airlock's runtime: bench/floor-server.ts)
 * and through airlock (buffered and strict audit), for select-only and TPC-B-like
 * scripts, simple and prepared protocol, 1 and 8 clients. Within each cell the targets run
 * in turn, and the round repeats (A B C D E A B C D E …), so a drift of the machine touches every
 * target alike; the medians over rounds are reported.
 *
 * CPU per statement is read from /proc of the proxy's process (airlock or pgbouncer) before
 * and after each run; audit records per statement (airlock's last seq before and after)
 * show that every statement really was recorded while being measured.
 */
import { startGatewayProcess, type GatewayProcess } from '../lib/gateway-process.ts';
import { startFloor } from '../lib/floor-process.ts';
import { cpuMicros, machineCpuTimes, stealPercent } from '../lib/proc.ts';
import { quietest } from '../lib/quiet.ts';
import { median, ratio, ROTATED_ORDER, rotated, round } from '../lib/stats.ts';
import { startBenchDatabase, postgresGatewayConfig, PASSWORD_ENV, BENCH_DB, BENCH_USER, type BenchDatabase } from './database.ts';
import { startPgbouncer, type Pgbouncer } from './pgbouncer.ts';
import { runPgbench, STATEMENTS_PER_TX, type PgTarget, type Protocol, type Script } from './pgbench.ts';
import { probeFdatasync, type FdatasyncProbe } from '../lib/fdatasync-probe.ts';

export const PG_TARGETS = ['direct', 'pgbouncer', 'node-relay', 'airlock-buffered', 'airlock-strict'] as const;
export type PgTargetName = (typeof PG_TARGETS)[number];

export interface PgRunMeasure {
  tps: number;
  meanMs: number;
  p99Ms: number;
  transactions: number;
  failed: number;
  /** CPU of the proxy process per statement (absent for direct). */
  cpuUsPerStatement?: number;
  /** airlock only: audit records written per statement during the run. */
  auditRecordsPerStatement?: number;
  /** airlock only: the spool's own fdatasyncs during the run (its /metrics histogram): mean latency and count per statement. */
  fsyncMeanMs?: number;
  fsyncsPerStatement?: number;
  /** Runs taken for this figure: a run with steal above lib/quiet.ts's limit is taken again and the quietest kept. */
  attempts?: number;
  /** The machine's steal time during the run, percent of its CPU time (lib/proc.ts; absent in results before it was measured). */
  stealPct?: number;
}

export interface PgCell {
  script: Script;
  protocol: Protocol;
  clients: number;
  runs: Record<PgTargetName, PgRunMeasure[]>;
  median: Record<PgTargetName, PgRunMeasure>;
  ratios: {
    bufferedVsPgbouncer: number;
    strictVsPgbouncer: number;
    bufferedVsDirect: number;
    strictVsDirect: number;
    pgbouncerVsDirect: number;
    /** The Node floor (a bare TCP relay) against pgbouncer, and airlock against that floor. */
    nodeRelayVsPgbouncer: number;
    bufferedVsNodeRelay: number;
  };
}

export interface PgPartResult {
  settings: { seconds: number; rounds: number; scale: number; pgbenchThreads: number; tls: string; auth: string; auditSink: string; order?: string | undefined };
  cells: PgCell[];
  /** One fdatasync on the spool's disk as the spool pays it, probed between the cells (the strict yardstick). */
  fdatasync?: FdatasyncProbe | undefined;
}

export interface PgPartOptions {
  pgbench: string;
  pgbouncer: string;
  seconds: number;
  rounds: number;
  scale: number;
  profileDir?: string | undefined;
  progress: (line: string) => void;
  /** Only these cells (`--quick`); default every script × protocol × clients. */
  cells?: Array<{ script: Script; protocol: Protocol; clients: number }> | undefined;
}

const AGENT = 'bench';
const SCRIPTS: Script[] = ['select-only', 'tpcb'];
const PROTOCOLS: Protocol[] = ['simple', 'prepared'];
const CLIENTS = [1, 8];

export async function runPgPart(o: PgPartOptions): Promise<PgPartResult> {
  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    o.progress('pg: starting PostgreSQL 15 and loading pgbench data');
    const db: BenchDatabase = await startBenchDatabase({ maxConnections: 100, pgbench: o.pgbench, scale: o.scale });
    started.push(db);
    const bouncer: Pgbouncer = await startPgbouncer({ binary: o.pgbouncer, upstreamPort: db.cluster.port, database: BENCH_DB, user: BENCH_USER, password: db.password, maxClients: 50 });
    started.push(bouncer);
    const relay = await startFloor('tcp', String(db.cluster.port));
    started.push(relay);
    const gateways: Record<'buffered' | 'strict', GatewayProcess> = {} as Record<'buffered' | 'strict', GatewayProcess>;
    for (const durability of ['buffered', 'strict'] as const) {
      const gw = await startGatewayProcess({
        name: `pg-${durability}`,
        config: postgresGatewayConfig(db, durability, AGENT),
        agents: [AGENT],
        env: { [PASSWORD_ENV]: db.password },
        profileDir: o.profileDir,
      });
      started.push(gw);
      gateways[durability] = gw;
    }
    const airlockTargets: Record<'buffered' | 'strict', PgTarget> = {} as Record<'buffered' | 'strict', PgTarget>;
    for (const durability of ['buffered', 'strict'] as const) {
      const gw = gateways[durability];
      const g = await gw.grant(AGENT, { resource: 'bench', access: 'write', ttl: '3h', task: 'benchmark: pgbench through airlock' });
      const env = g.connect.env;
      airlockTargets[durability] = { host: env.PGHOST!, port: Number(env.PGPORT), user: g.id, password: g.secret, database: env.PGDATABASE ?? BENCH_DB };
    }

    const targets: Record<PgTargetName, { target: PgTarget; pid?: number; gateway?: GatewayProcess }> = {
      direct: { target: db.direct },
      pgbouncer: { target: { ...db.direct, host: bouncer.host, port: bouncer.port }, pid: bouncer.pid },
      'node-relay': { target: { ...db.direct, host: '127.0.0.1', port: relay.port }, pid: relay.pid },
      'airlock-buffered': { target: airlockTargets.buffered, pid: gateways.buffered.pid, gateway: gateways.buffered },
      'airlock-strict': { target: airlockTargets.strict, pid: gateways.strict.pid, gateway: gateways.strict },
    };

    // Warm-up, not measured: JIT-compiled relay paths and warm caches for every target, both
    // protocols. One second of simple queries was not enough: the first cell measured (1
    // client, simple) still fell from 456 to 340 µs per statement over its three rounds.
    for (const name of PG_TARGETS) {
      for (const protocol of PROTOCOLS) await runPgbench(o.pgbench, targets[name].target, { script: 'select-only', protocol, clients: 8, seconds: o.cells ? 1 : 3 });
    }

    const cells: PgCell[] = [];
    // Probed before and after the cells; the report takes the larger p50 (the disk at its busier).
    const fsyncBefore = probeFdatasync();
    o.progress(`pg: fdatasync p50 ${fsyncBefore.p50Ms} ms, p99 ${fsyncBefore.p99Ms} ms (before the cells)`);
    for (const script of SCRIPTS) {
      for (const protocol of PROTOCOLS) {
        for (const clients of CLIENTS) {
          if (o.cells && !o.cells.some((c) => c.script === script && c.protocol === protocol && c.clients === clients)) continue;
          const runs = Object.fromEntries(PG_TARGETS.map((t) => [t, [] as PgRunMeasure[]])) as Record<PgTargetName, PgRunMeasure[]>;
          for (let round = 0; round < o.rounds; round++) {
            for (const name of rotated(PG_TARGETS, round)) {
              const t = targets[name];
              // Profiles (with --profile) of the cells the targets name: select-only, 8 clients, first round.
              const profiled = t.gateway !== undefined && script === 'select-only' && clients === 8 && round === 0;
              const one = () => measureRun(o, name, t, { script, protocol, clients, seconds: o.seconds }, profiled);
              const m = await quietest(one, (noisy, n) =>
                o.progress(`pg: ${script} ${protocol} c=${clients} round ${round + 1} ${name}: steal ${noisy.stealPct}% in attempt ${n}, taking it again`),
              );
              runs[name].push(m);
              o.progress(
                `pg: ${script} ${protocol} c=${clients} round ${round + 1} ${name}: ${round1(m.tps)} tps, mean ${m.meanMs.toFixed(3)} ms, p99 ${m.p99Ms.toFixed(3)} ms` +
                  (m.cpuUsPerStatement === undefined ? '' : `, ${round1(m.cpuUsPerStatement)} µs CPU/stmt`) +
                  `, steal ${m.stealPct}%` + (m.attempts! > 1 ? ` (quietest of ${m.attempts})` : ''),
              );
            }
          }
          const med = Object.fromEntries(PG_TARGETS.map((t) => [t, medianOf(runs[t])])) as Record<PgTargetName, PgRunMeasure>;
          cells.push({
            script,
            protocol,
            clients,
            runs,
            median: med,
            ratios: {
              bufferedVsPgbouncer: ratio(med['airlock-buffered'].tps, med.pgbouncer.tps),
              strictVsPgbouncer: ratio(med['airlock-strict'].tps, med.pgbouncer.tps),
              bufferedVsDirect: ratio(med['airlock-buffered'].tps, med.direct.tps),
              strictVsDirect: ratio(med['airlock-strict'].tps, med.direct.tps),
              pgbouncerVsDirect: ratio(med.pgbouncer.tps, med.direct.tps),
              nodeRelayVsPgbouncer: ratio(med['node-relay'].tps, med.pgbouncer.tps),
              bufferedVsNodeRelay: ratio(med['airlock-buffered'].tps, med['node-relay'].tps),
            },
          });
        }
      }
    }
    return {
      settings: {
        seconds: o.seconds,
        rounds: o.rounds,
        scale: o.scale,
        pgbenchThreads: 1,
        tls: 'off on every hop',
        auth: 'SCRAM-SHA-256 (client to airlock, pgbouncer and PostgreSQL)',
        auditSink: 'file sink (the spool drained to a JSONL file by the same process)',
        order: ROTATED_ORDER,
      },
      cells,
      fdatasync: larger(fsyncBefore, probeFdatasync()),
    };
  } finally {
    for (const s of started.reverse()) await s.stop().catch((e: unknown) => o.progress(`pg: stop failed: ${String(e)}`));
  }
}

/** One pgbench run against one target, with the proxy's CPU, the audit it wrote and the machine's steal around it. */
async function measureRun(
  o: PgPartOptions,
  name: PgTargetName,
  t: { target: PgTarget; pid?: number; gateway?: GatewayProcess },
  run: { script: Script; protocol: Protocol; clients: number; seconds: number },
  profiled: boolean,
): Promise<PgRunMeasure> {
  const { target, pid, gateway } = t;
  const machine0 = machineCpuTimes();
  const cpu0 = pid === undefined ? 0 : cpuMicros(pid);
  const audit0 = gateway ? await auditTotals(gateway) : undefined;
  const bench = () => runPgbench(o.pgbench, target, run);
  const r = profiled && gateway ? await gateway.profile(`${run.script}-${run.protocol}-c${run.clients}`, bench) : await bench();
  const cpu1 = pid === undefined ? 0 : cpuMicros(pid);
  const stealPct = stealPercent(machine0, machineCpuTimes());
  const audit1 = gateway ? await auditTotals(gateway) : undefined;
  const statements = r.transactions * STATEMENTS_PER_TX[run.script];
  const m: PgRunMeasure = { tps: r.tps, meanMs: r.meanMs, p99Ms: r.p99Ms, transactions: r.transactions, failed: r.failed, stealPct: round(stealPct, 1) };
  if (pid !== undefined) m.cpuUsPerStatement = (cpu1 - cpu0) / statements;
  if (audit0 && audit1) {
    m.auditRecordsPerStatement = (audit1.seq - audit0.seq) / statements;
    const fsyncs = audit1.fsyncs - audit0.fsyncs;
    if (fsyncs > 0) {
      m.fsyncMeanMs = ((audit1.fsyncSeconds - audit0.fsyncSeconds) * 1000) / fsyncs;
      m.fsyncsPerStatement = fsyncs / statements;
    }
    // A figure measured without the audit it claims to include would be a lie.
    if (m.auditRecordsPerStatement < 1) {
      throw new Error(`pg: ${name} wrote ${audit1.seq - audit0.seq} audit records for ${statements} statements`);
    }
  }
  return m;
}

/** The last audit seq and the spool's fdatasync histogram totals, from one /metrics read. */
async function auditTotals(gateway: GatewayProcess): Promise<{ seq: number; fsyncSeconds: number; fsyncs: number }> {
  const [seq, fsyncSeconds, fsyncs] = await gateway.metrics(['airlock_audit_last_seq', 'airlock_audit_spool_fsync_seconds_sum', 'airlock_audit_spool_fsync_seconds_count']);
  return { seq: seq!, fsyncSeconds: fsyncSeconds!, fsyncs: fsyncs! };
}

function larger(a: FdatasyncProbe, b: FdatasyncProbe): FdatasyncProbe {
  return a.p50Ms >= b.p50Ms ? a : b;
}

function medianOf(runs: PgRunMeasure[]): PgRunMeasure {
  const pick = (f: (r: PgRunMeasure) => number | undefined): number | undefined => {
    const values = runs.map(f).filter((v): v is number => v !== undefined);
    return values.length === 0 ? undefined : median(values);
  };
  const out: PgRunMeasure = {
    tps: round(pick((r) => r.tps)!, 1),
    meanMs: round(pick((r) => r.meanMs)!, 3),
    p99Ms: round(pick((r) => r.p99Ms)!, 3),
    transactions: pick((r) => r.transactions)!,
    failed: runs.reduce((s, r) => s + r.failed, 0),
  };
  const cpu = pick((r) => r.cpuUsPerStatement);
  if (cpu !== undefined) out.cpuUsPerStatement = round(cpu, 1);
  const rec = pick((r) => r.auditRecordsPerStatement);
  if (rec !== undefined) out.auditRecordsPerStatement = round(rec, 2);
  const fsyncMean = pick((r) => r.fsyncMeanMs);
  if (fsyncMean !== undefined) out.fsyncMeanMs = round(fsyncMean, 3);
  const fsyncs = pick((r) => r.fsyncsPerStatement);
  if (fsyncs !== undefined) out.fsyncsPerStatement = round(fsyncs, 2);
  const steal = pick((r) => r.stealPct);
  if (steal !== undefined) out.stealPct = round(steal, 1);
  return out;
}

function round1(v: number): number {
  return round(v, 1);
}
