/** The machine a run happened on, for the results header: numbers mean little without it. */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem, release, platform } from 'node:os';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  versions: Record<string, string>;
}

/** `prog args` with stderr folded in (nginx -v and wrk -v print there; wrk exits 1). */
function versionOf(path: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(path, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? 'unknown';
}

const PATTERNS: Record<string, { args: string[]; pattern: RegExp }> = {
  pgbench: { args: ['--version'], pattern: /\(PostgreSQL\) ([\d.]+)/ },
  pgbouncer: { args: ['--version'], pattern: /PgBouncer ([\d.]+)/i },
  nginx: { args: ['-v'], pattern: /nginx\/([\d.]+)/ },
  wrk: { args: ['-v'], pattern: /wrk (?:debian\/)?([\d.]+)/ },
};

/** `tools`: program name -> path, as found by requireTools. */
export function machineInfo(tools: Record<string, string>): MachineInfo {
  const list = cpus();
  const versions: Record<string, string> = {};
  for (const [name, path] of Object.entries(tools)) {
    const p = PATTERNS[name];
    if (p) versions[name === 'pgbench' ? 'postgres' : name] = versionOf(path, p.args, p.pattern);
  }
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    os: `${platform()} ${release()}`,
    node: process.version,
    versions,
  };
}
