/**
 * `npm run bench [-- pg|http|cost|work ...] [--seconds N] [--rounds N] [--profile]`
 *
 * Runs the benchmark parts (all by default), each starting and stopping its own servers on
 * 127.0.0.1, and writes bench/results/latest.json and latest.md. Running only some parts
 * keeps the other parts' figures from the previous latest.json, marked with their own date.
 *
 *   --seconds N   length of each pgbench / wrk run (default 3)
 *   --rounds N    rounds of alternation per cell; medians are reported (default 3)
 *   --profile     take V8 CPU profiles of airlock during the select-only 8-client pgbench
 *                 runs, the first GetItem round and grant issuance, into bench/results/profiles/
 *                 with a summary of the hottest functions. Profiling slows airlock, so such a
 *                 run writes its figures there too and leaves latest.json / latest.md alone.
 *   --quick       only the cells of the audit hot paths (pg select-only 8 clients simple and
 *                 prepared, 1 client simple; GetItem at 8 and 1 connections, no moto), written
 *                 to bench/results/partial-quick.{json,md}; latest.* are left alone
 *   --render      measure nothing: rewrite latest.md from latest.json (after a report change)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTools } from './lib/tools.ts';
import { machineInfo } from './lib/machine.ts';
import { runPgPart } from './pg/run-pg.ts';
import { runHttpPart } from './http/run-http.ts';
import { runCostPart } from './cost/run-cost.ts';
import { runWorkPart } from './work/run-work.ts';
import { renderMarkdown, type BenchResults, type CodeVersion } from './report.ts';
import { summarizeProfiles } from './profile-summary.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const ALL_PARTS = ['pg', 'http', 'cost', 'work'] as const;
type Part = (typeof ALL_PARTS)[number];

function parseArgs(argv: string[]): { parts: Part[]; seconds: number; rounds: number; profile: boolean; render: boolean; quick: boolean } {
  const parts: Part[] = [];
  let seconds = 3;
  let rounds = 3;
  let profile = false;
  let quick = false;
  let render = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--render') render = true;
    else if (a === '--seconds') seconds = positive(argv[++i], '--seconds');
    else if (a === '--rounds') rounds = positive(argv[++i], '--rounds');
    else if (a === '--profile') profile = true;
    else if (a === '--quick') quick = true;
    else if ((ALL_PARTS as readonly string[]).includes(a)) parts.push(a as Part);
    else throw new Error(`bench: unknown argument "${a}" (parts: ${ALL_PARTS.join(', ')}; options: --seconds N, --rounds N, --profile, --render)`);
  }
  return { parts: parts.length === 0 ? [...ALL_PARTS] : [...new Set(parts)], seconds, rounds, profile, render, quick };
}

function positive(value: string | undefined, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 600) throw new Error(`bench: ${flag} needs a whole number from 1 to 600`);
  return n;
}

/** The commit measured, and which files of the code under test differ from it. */
function codeVersion(): CodeVersion {
  const git = (args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    const commit = git(['rev-parse', '--short=12', 'HEAD']);
    const uncommitted = git(['status', '--porcelain', '--', 'core', 'plugins', 'audit-sinks', 'package-lock.json'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return { commit, uncommitted };
  } catch {
    return { commit: 'unknown (not a git work tree)', uncommitted: [] };
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.render) {
    const saved = JSON.parse(readFileSync(join(RESULTS, 'latest.json'), 'utf8')) as BenchResults;
    writeFileSync(join(RESULTS, 'latest.md'), renderMarkdown(saved));
    process.stderr.write('bench: rewrote bench/results/latest.md from latest.json\n');
    return;
  }
  const tools = requireTools(args.parts);
  const profileDir = args.profile ? join(RESULTS, 'profiles') : undefined;
  const progress = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const t0 = Date.now();

  const previous: Partial<BenchResults> = existsSync(join(RESULTS, 'latest.json'))
    ? (JSON.parse(readFileSync(join(RESULTS, 'latest.json'), 'utf8')) as Partial<BenchResults>)
    : {};
  const codeAtStart = codeVersion();
  const now = new Date().toISOString();
  const results: BenchResults = {
    generatedAt: now,
    machine: machineInfo(tools),
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    durationSeconds: 0,
    code: codeAtStart,
    pg: previous.pg,
    http: previous.http,
    cost: previous.cost,
    work: previous.work,
  };

  if (args.quick) {
    await quickRun(args, tools, profileDir, progress, codeAtStart);
    return;
  }
  if (args.parts.includes('pg')) {
    const pg = await runPgPart({ pgbench: tools.pgbench!, pgbouncer: tools.pgbouncer!, seconds: args.seconds, rounds: args.rounds, scale: 8, profileDir, progress });
    results.pg = { measuredAt: new Date().toISOString(), ...pg };
  }
  if (args.parts.includes('http')) {
    const http = await runHttpPart({ nginx: tools.nginx!, wrk: tools.wrk!, seconds: args.seconds, rounds: args.rounds, profileDir, progress });
    results.http = { measuredAt: new Date().toISOString(), ...http };
  }
  if (args.parts.includes('cost')) {
    const cost = await runCostPart({ pgbouncer: tools.pgbouncer!, seconds: args.seconds, profileDir, progress });
    results.cost = { measuredAt: new Date().toISOString(), ...cost };
  }
  if (args.parts.includes('work')) {
    results.work = { measuredAt: new Date().toISOString(), ...(await runWorkPart({ progress })) };
  }
  results.durationSeconds = Math.round((Date.now() - t0) / 1000);
  // The work tree is shared: say so when the code under test changed while it was measured.
  const codeAtEnd = codeVersion();
  if (codeAtEnd.commit !== codeAtStart.commit || codeAtEnd.uncommitted.join() !== codeAtStart.uncommitted.join()) {
    results.code = { ...codeAtStart, changedDuringRun: `now ${codeAtEnd.commit}${codeAtEnd.uncommitted.length ? ` + ${codeAtEnd.uncommitted.length} uncommitted` : ''}` };
    progress(`bench: warning: the code under test changed during the run (${codeAtStart.commit} -> ${codeAtEnd.commit})`);
  }

  const outDir = profileDir ?? RESULTS;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  const md = renderMarkdown(results);
  writeFileSync(join(outDir, 'latest.md'), md);
  process.stdout.write(md);
  if (profileDir) {
    const summary = summarizeProfiles(profileDir);
    writeFileSync(join(profileDir, 'summary.txt'), summary);
    process.stdout.write(`\nCPU profiles in ${profileDir}; hottest functions:\n${summary}`);
  }
  progress(`bench: done in ${results.durationSeconds} s; wrote ${join(outDir, 'latest.md')} and latest.json`);
}

const QUICK_CELLS = [
  { script: 'select-only', protocol: 'simple', clients: 8 },
  { script: 'select-only', protocol: 'prepared', clients: 8 },
  { script: 'select-only', protocol: 'simple', clients: 1 },
] as const;

/** `--quick`: the hot-path cells only, as a compact table beside (not in) latest.md. */
async function quickRun(
  args: ReturnType<typeof parseArgs>,
  tools: ReturnType<typeof requireTools>,
  profileDir: string | undefined,
  progress: (line: string) => void,
  code: ReturnType<typeof codeVersion>,
): Promise<void> {
  const rows: string[] = [];
  const out: Record<string, unknown> = { generatedAt: new Date().toISOString(), code, seconds: args.seconds, rounds: args.rounds };
  if (args.parts.includes('pg')) {
    const pg = await runPgPart({ pgbench: tools.pgbench!, pgbouncer: tools.pgbouncer!, seconds: args.seconds, rounds: args.rounds, scale: 8, profileDir, progress, cells: QUICK_CELLS.map((c) => ({ ...c })) });
    out.pg = pg;
    rows.push('| pg cell | pgbouncer tps | buffered tps | strict tps | buffered / pgbouncer | strict / pgbouncer | CPU µs/stmt pgbouncer / relay / buffered / strict | mean ms pgbouncer / buffered / strict |', '|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of pg.cells) {
      const m = c.median;
      rows.push(
        `| ${c.script} · ${c.protocol} · ${c.clients} | ${m.pgbouncer.tps} | ${m['airlock-buffered'].tps} | ${m['airlock-strict'].tps} | ${c.ratios.bufferedVsPgbouncer} | ${c.ratios.strictVsPgbouncer} | ` +
          `${m.pgbouncer.cpuUsPerStatement} / ${m['node-relay'].cpuUsPerStatement} / ${m['airlock-buffered'].cpuUsPerStatement} / ${m['airlock-strict'].cpuUsPerStatement} | ${m.pgbouncer.meanMs} / ${m['airlock-buffered'].meanMs} / ${m['airlock-strict'].meanMs} |`,
      );
    }
    rows.push('');
  }
  if (args.parts.includes('http')) {
    const http = await runHttpPart({ nginx: tools.nginx!, wrk: tools.wrk!, seconds: args.seconds, rounds: args.rounds, profileDir, progress, skipMoto: true });
    out.http = http;
    const m = http.median;
    rows.push(
      '| GetItem | node floor req/s | buffered req/s | strict req/s | buffered / floor | strict / floor | CPU µs/req floor / buffered / strict | 1 conn added p50 ms buffered / strict |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      `| 8 connections | ${m['node-floor'].rps} | ${m['airlock-buffered'].rps} | ${m['airlock-strict'].rps} | ${http.ratios.bufferedVsNodeFloor} | ${Math.round((m['airlock-strict'].rps / m['node-floor'].rps) * 100) / 100} | ` +
        `${m['node-floor'].cpuUsPerRequest} / ${m['airlock-buffered'].cpuUsPerRequest} / ${m['airlock-strict'].cpuUsPerRequest} | ${http.ratios.bufferedAddedP50MsOneConnection} / ${http.ratios.strictAddedP50MsOneConnection} |`,
      '',
    );
  }
  const dir = profileDir ?? RESULTS;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'partial-quick.json'), JSON.stringify(out, null, 2) + '\n');
  const md = `# Quick bench (${out.generatedAt as string}, commit ${code.commit}${code.uncommitted.length ? ' + uncommitted' : ''}, ${args.seconds} s × ${args.rounds} rounds)\n\n${rows.join('\n')}\n`;
  writeFileSync(join(dir, 'partial-quick.md'), md);
  process.stdout.write(md);
  if (profileDir) {
    const summary = summarizeProfiles(profileDir);
    writeFileSync(join(profileDir, 'summary.txt'), summary);
    process.stdout.write(`\nCPU profiles in ${profileDir}; hottest functions:\n${summary}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
