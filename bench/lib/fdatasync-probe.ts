/**
 * One fdatasync on this disk, measured the way the strict spool pays it (core/audit/spool-writer.ts):
 * a record-sized line written in place over zeros written ahead of it (the spool preallocates
 * its segment), then fdatasync, N times, in the temp directory where every bench gateway's
 * dataDir is. Its p50 is the yardstick of the "strict added latency" target. The same with an
 * append to a growing file (what an fdatasync costs when it must also commit the file size)
 * is measured beside it, for reference.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FdatasyncProbe {
  samples: number;
  /** In place over preallocated zeros: the spool's own fdatasync. */
  p50Ms: number;
  p99Ms: number;
  /** Appending to a growing file (size committed by every sync). */
  appendP50Ms?: number | undefined;
  appendP99Ms?: number | undefined;
}

const LINE = Buffer.from(`${JSON.stringify({ v: 1, type: 'pg.query', data: { sql: 'select abalance from pgbench_accounts where aid = 4242;' }, pad: 'x'.repeat(160) })}\n`);

function measure(samples: number, inPlace: boolean): { p50Ms: number; p99Ms: number } {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-fsync-'));
  const fd = openSync(join(dir, 'probe.jsonl'), inPlace ? 'w+' : 'a');
  const ms: number[] = [];
  try {
    if (inPlace) {
      const zeros = Buffer.alloc(samples * LINE.length + 4096);
      writeSync(fd, zeros, 0, zeros.length, 0);
      fdatasyncSync(fd);
    }
    for (let i = 0; i < samples; i++) {
      if (inPlace) writeSync(fd, LINE, 0, LINE.length, i * LINE.length);
      else writeSync(fd, LINE);
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
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

export function probeFdatasync(samples = 500): FdatasyncProbe {
  const inPlace = measure(samples, true);
  const append = measure(samples, false);
  return { samples, p50Ms: inPlace.p50Ms, p99Ms: inPlace.p99Ms, appendP50Ms: append.p50Ms, appendP99Ms: append.p99Ms };
}
