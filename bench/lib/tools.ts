/**
 * The external programs the benchmarks drive, and the Debian package that brings each.
 * A missing one stops the run before anything starts, naming the package to install.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface Tool {
  /** Absolute path, resolved once. */
  path: string;
}

const PATH_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin', '/sbin', '/bin'];

function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...PATH_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function pgBinDir(): string | undefined {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/** Requirements per part: the program and the package that provides it. */
export const REQUIREMENTS: Record<string, ReadonlyArray<{ name: string; pkg: string }>> = {
  pg: [
    { name: 'pgbench', pkg: 'postgresql-15 (pgbench ships with the server; `pg_config --bindir`)' },
    { name: 'pgbouncer', pkg: 'pgbouncer' },
    { name: 'psql', pkg: 'postgresql-client-15' },
  ],
  http: [
    { name: 'nginx', pkg: 'nginx' },
    { name: 'wrk', pkg: 'wrk' },
    { name: 'python3', pkg: 'python3 with moto 5 (pip install "moto[server]")' },
  ],
  cost: [
    { name: 'pgbouncer', pkg: 'pgbouncer' },
    { name: 'psql', pkg: 'postgresql-client-15' },
  ],
};

/** Resolve a program: pgbench from the PostgreSQL bindir first, else PATH and the sbin dirs. */
export function findTool(name: string): string | undefined {
  if (name === 'pgbench') {
    const dir = pgBinDir();
    if (dir && existsSync(join(dir, 'pgbench'))) return join(dir, 'pgbench');
  }
  return which(name);
}

/** Throw one clear error listing every missing program and its package. */
export function requireTools(parts: readonly string[]): Record<string, string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const part of parts) {
    for (const { name, pkg } of REQUIREMENTS[part] ?? []) {
      const path = findTool(name);
      if (path) found[name] = path;
      else missing.push(`${name} (package: ${pkg})`);
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `bench: missing programs: ${[...new Set(missing)].join('; ')}.\n` +
        `Install the Debian packages as root: apt-get update && apt-get install -y pgbouncer nginx wrk`,
    );
  }
  return found;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
