/** Start bench/floor-server.ts (the Node floor: a relay doing none of airlock's work) as a child. */
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { serverArgs } from './bundle.ts';
import { cpuMicros, rssBytes } from './proc.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface FloorProcess {
  port: number;
  pid: number;
  cpuMicros(): number;
  rssBytes(): number;
  /** Full garbage collection in the floor process; its memory after it. */
  gc(): Promise<NodeJS.MemoryUsage>;
  stop(): Promise<void>;
}

export async function startFloor(mode: 'tcp' | 'http', upstream: string): Promise<FloorProcess> {
  const child = spawn(process.execPath, ['--expose-gc', ...(await serverArgs('floor-server')), mode, upstream], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const lines = createInterface({ input: child.stdout! });
  const info = await new Promise<{ port: number; pid: number }>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`floor ${mode}: not ready after 30 s: ${stderr}`)), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`floor ${mode}: exited with ${code}: ${stderr}`));
    });
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolvePromise(JSON.parse(line) as { port: number; pid: number });
    });
  });
  child.removeAllListeners('exit');
  return {
    port: info.port,
    pid: info.pid,
    cpuMicros: () => cpuMicros(info.pid),
    rssBytes: () => rssBytes(info.pid),
    async gc() {
      const answer = new Promise<NodeJS.MemoryUsage>((resolveAnswer, reject) => {
        const timer = setTimeout(() => reject(new Error(`floor ${mode}: no answer to gc: ${stderr}`)), 10_000);
        const onLine = (line: string) => {
          const parsed = JSON.parse(line) as { gc?: boolean; memory?: NodeJS.MemoryUsage };
          if (parsed.memory === undefined) return;
          clearTimeout(timer);
          lines.off('line', onLine);
          resolveAnswer(parsed.memory);
        };
        lines.on('line', onLine);
      });
      child.stdin!.write('gc\n');
      return answer;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}
