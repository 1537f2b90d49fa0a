/**
 * airlock as its own process for the benchmarks, so its CPU and memory can be read from
 * /proc/<pid> and the load generator never shares its event loop.
 *
 *   node --expose-gc --import tsx bench/gateway-server.ts SPEC.json
 *
 * SPEC.json: `{ "config": <airlock config object>, "agents": ["bench"] }`. Once started it
 * prints ONE JSON line on stdout: `{ ready, pid, url, listening, tokens: {agent: jwt} }`.
 * Commands on stdin, one per line: `gc` (full collection, answers `{"gc":true}`) so memory
 * can be read after garbage is gone; `stop` (or end of stdin, or SIGTERM) closes the gateway
 * cleanly and exits; `profile-start` and `profile-stop FILE` take a V8 CPU profile of just the
 * span between them (answering `{"profile":"started"}` / `{"profile":FILE}`), so a profile
 * shows the measured load and not start-up; `heap-snapshot FILE` writes a V8 heap snapshot
 * after a full collection (answering `{"heapSnapshot":FILE}`), for what idle sessions keep.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createInterface } from 'node:readline';
import { writeHeapSnapshot } from 'node:v8';
import pino from 'pino';
import { startGateway } from '../core/hub.ts';
import { mintAgentToken } from '../core/identity/local-issuer.ts';
import { plugins } from '../plugins/index.ts';
import { sinks } from '../audit-sinks/index.ts';

interface ServerSpec {
  config: Record<string, unknown>;
  agents: string[];
}

const specPath = process.argv[2];
if (!specPath) {
  process.stderr.write('usage: gateway-server.ts SPEC.json\n');
  process.exit(2);
}
const spec = JSON.parse(readFileSync(specPath, 'utf8')) as ServerSpec;
const log = pino({ level: process.env.BENCH_GATEWAY_LOG ?? 'warn' }, pino.destination(2));
const gateway = await startGateway({ config: spec.config, plugins, sinks, log });

const tokens: Record<string, string> = {};
for (const agent of spec.agents) tokens[agent] = await mintAgentToken(gateway.identity, agent, 4 * 3_600_000);

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= gateway.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`gateway-server: close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
  return stopping;
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = line.trim();
  if (command === 'gc') {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) {
      // Twice: the first pass can leave finalizable objects for the second.
      gc();
      gc();
    }
    process.stdout.write(JSON.stringify({ gc: gc !== undefined, memory: process.memoryUsage() }) + '\n');
  } else if (command === 'profile-start') {
    void profileStart().then(() => process.stdout.write(JSON.stringify({ profile: 'started' }) + '\n'));
  } else if (command.startsWith('profile-stop ')) {
    const file = command.slice('profile-stop '.length);
    void profileStop(file).then(() => process.stdout.write(JSON.stringify({ profile: file }) + '\n'));
  } else if (command.startsWith('heap-snapshot ')) {
    // After a full collection, so the snapshot holds what is kept (bench/README.md: idle memory).
    (globalThis as { gc?: () => void }).gc?.();
    const file = writeHeapSnapshot(command.slice('heap-snapshot '.length));
    process.stdout.write(JSON.stringify({ heapSnapshot: file }) + '\n');
  } else if (command === 'stop') {
    void stop();
  }
});

let inspector: Session | undefined;
async function profileStart(): Promise<void> {
  inspector = new Session();
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 200 });
  await inspector.post('Profiler.start');
}
async function profileStop(file: string): Promise<void> {
  if (!inspector) return;
  const { profile } = await inspector.post('Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  inspector.disconnect();
  inspector = undefined;
}
lines.on('close', () => void stop());

process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, url: gateway.url, listening: gateway.listening, tokens }) + '\n');
