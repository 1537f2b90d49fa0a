/** One wrk run with a request script, and what it reports: req/s and the latency distribution. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface WrkRun {
  rps: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /** Responses that were not 2xx/3xx: a run with any is not a valid measure. */
  non2xx: number;
  socketErrors: number;
}

export async function runWrk(wrk: string, url: string, script: string, o: { connections: number; seconds: number }): Promise<WrkRun> {
  const args = ['-t', '1', '-c', String(o.connections), '-d', `${o.seconds}s`, '--latency', '--timeout', '10s', '-s', script, url];
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(wrk, args, { encoding: 'utf8', timeout: (o.seconds + 30) * 1000 }));
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`wrk ${args.join(' ')} failed: ${(err.stderr || err.stdout || err.message).trim().slice(-1500)}`);
  }
  const rps = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(stdout)?.[1]);
  const requests = Number(/^\s*(\d+) requests in /m.exec(stdout)?.[1]);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s)\s*$/m.exec(stdout);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(stdout);
  if (!Number.isFinite(rps) || !Number.isFinite(requests) || !p50 || !p99) throw new Error(`wrk output not understood:\n${stdout}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? '0');
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const socketErrors = se ? se.slice(1).reduce((s, v) => s + Number(v), 0) : 0;
  return { rps, requests, p50Ms: toMs(p50[1]!, p50[2]!), p99Ms: toMs(p99[1]!, p99[2]!), non2xx, socketErrors };
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : v;
}
