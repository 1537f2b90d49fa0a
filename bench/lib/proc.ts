/**
 * What the benchmarks read about a process from the kernel: CPU time (utime + stime of
 * /proc/<pid>/stat) and resident memory (VmRSS of /proc/<pid>/status). Measuring from
 * outside means the figure includes everything the process does (GC, libuv threads), not
 * just what JavaScript sees.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    // 100 on every Linux we know; fall back to it if getconf answers nonsense.
    ticksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
  }
  return ticksPerSecond;
}

/** User + system CPU time of a process, in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (field 14) is fields[11] and stime fields[12].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot parse /proc/${pid}/stat`);
  return ((utime + stime) * 1_000_000) / clockTicks();
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The machine's CPU time so far, from the first line of /proc/stat (clock ticks, all cores). */
export interface MachineCpuTimes {
  /** Time this virtual machine was ready to run but the hypervisor ran someone else. */
  steal: number;
  /** user + nice + system + idle + iowait + irq + softirq + steal (guest time is inside user). */
  total: number;
}

export function machineCpuTimes(): MachineCpuTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (!line.startsWith('cpu ') || fields.length < 8 || fields.some((v) => !Number.isFinite(v))) throw new Error('cannot parse /proc/stat');
  return { steal: fields[7]!, total: fields.reduce((a, b) => a + b, 0) };
}

/**
 * Share of the machine's CPU time the hypervisor took between two readings (percent). A run
 * with steal ran on a slower machine than its neighbours in the table, by about that share
 * of each core, and usually by more: a busy neighbour also takes cache and memory bandwidth,
 * which steal does not show. The report prints it so a reader can tell noise from change.
 */
export function stealPercent(before: MachineCpuTimes, after: MachineCpuTimes): number {
  const total = after.total - before.total;
  return total > 0 ? (100 * (after.steal - before.steal)) / total : 0;
}
