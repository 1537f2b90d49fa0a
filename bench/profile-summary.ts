/**
 * Summarise V8 CPU profiles (`--cpu-prof` output): the functions with the most self time
 * and the same by package/folder, per profile. Usable alone:
 *   npx tsx bench/profile-summary.ts bench/results/profiles
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame lives: an npm package, a node: builtin, or a folder of this repository. */
function area(url: string): string {
  if (url === '') return '(native / V8)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url.split('/')[0]!;
  const repo = /\/(core|plugins|audit-sinks|bench)\/(.*\/)?/.exec(url);
  if (repo) return `${repo[1]}/${(repo[2] ?? '').replace(/\/$/, '')}`.replace(/\/$/, '');
  return url.replace(/^file:\/\//, '');
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url === '' ? '' : ` ${url.replace(/^file:\/\/.*?\/(node_modules|core|plugins|audit-sinks|bench)\//, '$1/')}:${lineNumber + 1}`;
  return `${functionName || '(anonymous)'}${file}`;
}

export function summarizeProfile(profile: CpuProfile, top = 25): string {
  const selfUs = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    for (let i = 0; i < profile.samples.length; i++) {
      const id = profile.samples[i]!;
      selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0));
    }
  } else {
    const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0));
    for (const n of profile.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * interval);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let idle = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    if (node.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    byFunction.set(label(node), (byFunction.get(label(node)) ?? 0) + us);
    const a = ['(garbage collector)', '(program)'].includes(node.callFrame.functionName) ? node.callFrame.functionName : area(node.callFrame.url);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => `${((100 * us) / Math.max(1, busy)).toFixed(1).padStart(5)}%`;
  const lines: string[] = [`busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled (percentages of busy time)`, '  by area:'];
  for (const [name, us] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`    ${pct(us)}  ${name}`);
  lines.push('  by function (self time):');
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${pct(us)}  ${name}`);
  lines.push("  airlock's own functions (inclusive time: the function and what it calls):");
  for (const [name, us] of inclusiveOfRepo(profile, selfUs).slice(0, top)) lines.push(`    ${pct(us)}  ${name}`);
  return lines.join('\n') + '\n';
}

/**
 * Inclusive time of functions in core/, plugins/ and audit-sinks/: each node's subtree, added
 * once per function even when it recurses (a frame already on the path is not counted again).
 */
function inclusiveOfRepo(profile: CpuProfile, selfUs: Map<number, number>): Array<[string, number]> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const totals = new Map<string, number>();
  const subtree = new Map<number, number>();
  const sizeOf = (id: number): number => {
    const cached = subtree.get(id);
    if (cached !== undefined) return cached;
    const node = byId.get(id)!;
    let sum = selfUs.get(id) ?? 0;
    for (const c of node.children ?? []) sum += sizeOf(c);
    subtree.set(id, sum);
    return sum;
  };
  const walk = (id: number, onPath: Set<string>): void => {
    const node = byId.get(id)!;
    const repo = /\/(core|plugins|audit-sinks)\//.test(node.callFrame.url);
    const name = label(node);
    const added = repo && !onPath.has(name);
    if (added) {
      totals.set(name, (totals.get(name) ?? 0) + sizeOf(id));
      onPath.add(name);
    }
    for (const c of node.children ?? []) walk(c, onPath);
    if (added) onPath.delete(name);
  };
  for (const n of profile.nodes) if (!childIds.has(n.id)) walk(n.id, new Set());
  return [...totals].sort((a, b) => b[1] - a[1]);
}

export function summarizeProfiles(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  if (files.length === 0) return '(no profiles written)\n';
  return files.map((f) => `== ${basename(f)}\n${summarizeProfile(JSON.parse(readFileSync(f, 'utf8')) as CpuProfile)}`).join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2];
  if (!target) {
    process.stderr.write('usage: profile-summary.ts DIR|FILE.cpuprofile\n');
    process.exit(2);
  }
  process.stdout.write(
    statSync(target).isDirectory() ? summarizeProfiles(target) : summarizeProfile(JSON.parse(readFileSync(target, 'utf8')) as CpuProfile),
  );
}
