/**
 * One pgbench run and what it measured: TPS from pgbench's own summary, mean and p99 latency
 * from its per-transaction log (`--log`), which records every transaction's latency in µs.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mean, percentileSorted } from '../lib/stats.ts';

const execFileAsync = promisify(execFile);

export type Script = 'select-only' | 'tpcb';
export type Protocol = 'simple' | 'prepared';

/** Statements per transaction: `-S` is one SELECT; TPC-B-like is BEGIN, 3 UPDATE, SELECT, INSERT, END. */
export const STATEMENTS_PER_TX: Record<Script, number> = { 'select-only': 1, tpcb: 7 };

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface PgbenchRun {
  tps: number;
  transactions: number;
  failed: number;
  meanMs: number;
  p99Ms: number;
}

export async function runPgbench(pgbench: string, target: PgTarget, o: { script: Script; protocol: Protocol; clients: number; seconds: number }): Promise<PgbenchRun> {
  const logDir = mkdtempSync(join(tmpdir(), 'airlock-pgbench-'));
  try {
    const args = [
      '-n', // no VACUUM before the run (it ran once after -i); the same for every target
      '-M', o.protocol,
      ...(o.script === 'select-only' ? ['-S'] : []),
      '-c', String(o.clients),
      '-j', '1',
      '-T', String(o.seconds),
      '-l', `--log-prefix=${join(logDir, 'tx')}`,
      '-h', target.host, '-p', String(target.port), '-U', target.user, target.database,
    ];
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync(pgbench, args, {
        env: { PATH: process.env.PATH ?? '', PGPASSWORD: target.password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '15' },
        cwd: logDir,
        encoding: 'utf8',
        maxBuffer: 16 << 20,
        timeout: (o.seconds + 60) * 1000,
      }));
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string; message: string };
      throw new Error(`pgbench ${args.join(' ')} failed: ${(err.stderr || err.stdout || err.message).trim().slice(-1500)}`);
    }
    const tps = Number(/^tps = ([\d.]+) \(without initial connection time\)/m.exec(stdout)?.[1]);
    const transactions = Number(/^number of transactions actually processed: (\d+)/m.exec(stdout)?.[1]);
    const failed = Number(/^number of failed transactions: (\d+)/m.exec(stdout)?.[1] ?? '0');
    if (!Number.isFinite(tps) || !Number.isFinite(transactions) || transactions === 0) {
      throw new Error(`pgbench output not understood (no tps/transactions):\n${stdout.slice(-1500)}`);
    }
    const latencies = readLatencies(logDir);
    if (latencies.length === 0) throw new Error('pgbench wrote no per-transaction log');
    return { tps, transactions, failed, meanMs: mean(latencies) / 1000, p99Ms: percentileSorted(latencies, 99) / 1000 };
  } finally {
    rmSync(logDir, { recursive: true, force: true });
  }
}

/**
 * Latencies (µs) of successful transactions, ascending. A log line is
 * `client_id transaction_no time script_no time_epoch time_us ...`; `time` is the latency,
 * or `failed`/`skipped` for transactions that did not complete.
 */
function readLatencies(dir: string): Float64Array {
  const values: number[] = [];
  for (const file of readdirSync(dir).filter((f) => f.startsWith('tx.'))) {
    const text = readFileSync(join(dir, file), 'utf8');
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      const a = text.indexOf(' ', start);
      const b = text.indexOf(' ', a + 1);
      const c = text.indexOf(' ', b + 1);
      if (a !== -1 && b !== -1 && c !== -1 && c < end) {
        const latency = Number(text.slice(b + 1, c));
        if (Number.isFinite(latency)) values.push(latency);
      }
      start = end + 1;
    }
  }
  return Float64Array.from(values).sort();
}
