/**
 * One fdatasync on this disk, measured the way the strict spool pays it: append a record-sized
 * line to a growing file in the temp directory (where every bench gateway's dataDir is), then
 * fdatasync, N times. Its p50 is the yardstick of the "strict added latency" target.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FdatasyncProbe {
  samples: number;
  p50Ms: number;
  p99Ms: number;
}

export function probeFdatasync(samples = 500): FdatasyncProbe {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-fsync-'));
  const fd = openSync(join(dir, 'probe.jsonl'), 'a');
  const line = Buffer.from(`${JSON.stringify({ v: 1, type: 'pg.query', data: { sql: 'select abalance from pgbench_accounts where aid = 4242;' }, pad: 'x'.repeat(160) })}\n`);
  const ms: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      writeSync(fd, line);
      const t0 = process.hrtime.bigint();
      fdatasyncSync(fd);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  ms.sort((a, b) => a - b);
  const at = (q: number): number => Math.round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]! * 1000) / 1000;
  return { samples, p50Ms: at(0.5), p99Ms: at(0.99) };
}
