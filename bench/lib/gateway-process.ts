/**
 * Start bench/gateway-server.ts (built as airlock ships: bundle.ts) as a child process with
 * a generated config, and read its CPU and memory from /proc. Each gateway gets its own
 * temp dataDir (spool, keys, grants), removed at stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface, type Interface } from 'node:readline';
import { cpuMicros, rssBytes } from './proc.ts';
import { serverArgs } from './bundle.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_TIMEOUT_MS = 60_000;

export interface GatewayProcessOptions {
  /** A label for errors and profile file names. */
  name: string;
  /** The airlock config; `gateway.dataDir` is filled in, and `{dataDir}` in any string replaced by it. */
  config: Record<string, unknown>;
  /** Agents to mint tokens for (local issuer). */
  agents: string[];
  /** Extra environment (AWS credentials, password variables). */
  env?: Record<string, string>;
  /** Where `profile(label, …)` writes V8 CPU profiles (profiling is off without it). */
  profileDir?: string | undefined;
}

export interface GatewayProcess {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  readonly listening: Readonly<Record<string, readonly string[]>>;
  readonly tokens: Readonly<Record<string, string>>;
  readonly dataDir: string;
  cpuMicros(): number;
  rssBytes(): number;
  /** Full garbage collection inside the gateway (needs --expose-gc, which we pass); its memory after it. */
  gc(): Promise<NodeJS.MemoryUsage>;
  /** A V8 heap snapshot of the gateway, after a full collection, written to `file`. */
  heapSnapshot(file: string): Promise<void>;
  /**
   * Run `work` with the gateway's CPU profiled (when a profileDir was given; else just run
   * it); the profile lands in `<profileDir>/<name>-<label>.cpuprofile`.
   */
  profile<T>(label: string, work: () => Promise<T>): Promise<T>;
  /** POST /v1/grants; throws unless 201. */
  grant(agent: string, body: Record<string, unknown>): Promise<{ id: string; secret: string; connect: Record<string, unknown> & { env: Record<string, string> } }>;
  /** A gauge or counter from /metrics (first sample whose line starts with `name`). */
  metric(name: string): Promise<number>;
  /** Several of them from one /metrics read, in the order asked. */
  metrics(names: readonly string[]): Promise<number[]>;
  stop(): Promise<void>;
}

export async function startGatewayProcess(o: GatewayProcessOptions): Promise<GatewayProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), `airlock-bench-${o.name}-`));
  const config = JSON.parse(JSON.stringify(o.config).replaceAll('{dataDir}', dataDir)) as Record<string, Record<string, unknown>>;
  config.gateway = { ...(config.gateway ?? {}), dataDir };
  const specPath = join(dataDir, 'bench-spec.json');
  writeFileSync(specPath, JSON.stringify({ config, agents: o.agents }), { mode: 0o600 });

  if (o.profileDir) mkdirSync(o.profileDir, { recursive: true });
  // BENCH_GATEWAY_NODE_ARGS (space-separated) lets a profiling session add flags such as
  // --perf-basic-prof without editing the harness; the bench itself never sets it.
  const extraArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const args = ['--expose-gc', ...extraArgs, ...(await serverArgs('gateway-server')), specPath];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...o.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const lines = createInterface({ input: child.stdout! });

  let ready: { pid: number; url: string; listening: Record<string, string[]>; tokens: Record<string, string> };
  try {
    ready = await waitForLine(child, lines, (l) => l.ready === true, READY_TIMEOUT_MS, () => stderr) as typeof ready;
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`gateway ${o.name} did not start: ${(e as Error).message}`);
  }

  let stopped = false;
  const self: GatewayProcess = {
    name: o.name,
    pid: ready.pid,
    url: ready.url,
    listening: ready.listening,
    tokens: ready.tokens,
    dataDir,
    cpuMicros: () => cpuMicros(ready.pid),
    rssBytes: () => rssBytes(ready.pid),
    async gc() {
      const answer = waitForLine(child, lines, (l) => 'gc' in l, 10_000, () => stderr);
      child.stdin!.write('gc\n');
      return ((await answer) as { memory: NodeJS.MemoryUsage }).memory;
    },
    async heapSnapshot(file) {
      const written = waitForLine(child, lines, (l) => l.heapSnapshot === file, 120_000, () => stderr);
      child.stdin!.write(`heap-snapshot ${file}\n`);
      await written;
    },
    async profile(label, work) {
      if (!o.profileDir) return await work();
      const started = waitForLine(child, lines, (l) => l.profile === 'started', 10_000, () => stderr);
      child.stdin!.write('profile-start\n');
      await started;
      try {
        return await work();
      } finally {
        const file = join(o.profileDir, `${o.name}-${label}.cpuprofile`);
        const written = waitForLine(child, lines, (l) => l.profile === file, 30_000, () => stderr);
        child.stdin!.write(`profile-stop ${file}\n`);
        await written;
      }
    },
    async grant(agent, body) {
      const token = ready.tokens[agent];
      if (!token) throw new Error(`gateway ${o.name}: no token for agent ${agent}`);
      const res = await fetch(`${ready.url}/v1/grants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as { id: string; secret: string; connect: Record<string, unknown> & { env: Record<string, string> } };
      if (res.status !== 201) throw new Error(`gateway ${o.name}: grant refused: HTTP ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
    async metric(name) {
      return (await self.metrics([name]))[0]!;
    },
    async metrics(names) {
      const lines = (await (await fetch(`${ready.url}/metrics`)).text()).split('\n');
      return names.map((name) => {
        const line = lines.find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
        if (line === undefined) throw new Error(`gateway ${o.name}: no metric ${name}`);
        return Number(line.slice(line.lastIndexOf(' ') + 1));
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
      child.stdin!.end('stop\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return self;
}

/** Resolve with the first stdout JSON line matching `match`; reject on exit or timeout. */
function waitForLine(
  child: ChildProcess,
  lines: Interface,
  match: (line: Record<string, unknown>) => boolean,
  timeoutMs: number,
  stderr: () => string,
): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      lines.off('line', onLine);
      child.off('exit', onExit);
    };
    const onLine = (line: string) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof parsed === 'object' && parsed !== null && match(parsed as Record<string, unknown>)) {
        cleanup();
        resolvePromise(parsed as Record<string, unknown>);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`exited with code ${code}: ${stderr().trim().slice(-2000)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no answer within ${timeoutMs} ms: ${stderr().trim().slice(-2000)}`));
    }, timeoutMs);
    lines.on('line', onLine);
    child.once('exit', onExit);
  });
}
