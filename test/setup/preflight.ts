/**
 * What the suite needs from the machine, checked (and, as root on Debian, installed) before
 * any test runs, so `npm install && npm test` holds on a fresh machine just as `.ci/run`
 * does. Anything that cannot be installed here fails in one line naming what to install.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

interface Requirement {
  /** What a test needs, in words. */
  readonly what: string;
  readonly present: () => boolean;
  /** Debian packages that provide it; undefined when it does not come from Debian here. */
  readonly debian?: readonly string[];
  /** What to tell a person when it cannot be installed automatically. */
  readonly hint: string;
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function postgresServer(): boolean {
  try {
    const bin = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(bin, b)));
  } catch {
    return false;
  }
}

function python(module: string): boolean {
  return spawnSync('python3', ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

const requirements: readonly Requirement[] = [
  { what: 'PostgreSQL 15 server (pg_config, initdb, pg_ctl)', present: postgresServer, debian: ['postgresql'], hint: 'apt-get install postgresql' },
  { what: 'psql', present: () => onPath('psql'), debian: ['postgresql-client'], hint: 'apt-get install postgresql-client' },
  { what: 'openssl', present: () => onPath('openssl'), debian: ['openssl'], hint: 'apt-get install openssl' },
  { what: 'aws CLI v2 (/usr/bin/aws)', present: () => existsSync('/usr/bin/aws'), debian: ['awscli'], hint: 'apt-get install awscli' },
  { what: 'Chromium (/usr/bin/chromium) for the console tests', present: () => existsSync('/usr/bin/chromium'), debian: ['chromium'], hint: 'apt-get install chromium' },
  { what: 'kubectl', present: () => onPath('kubectl'), hint: 'install kubectl (1.32) on PATH' },
  { what: 'moto 5 for python3 (`python3 -m moto.server`)', present: () => python('moto.server'), hint: 'install the Python package moto[server] 5 for python3' },
];

function canInstallDebian(): boolean {
  return process.platform === 'linux' && typeof process.getuid === 'function' && process.getuid() === 0 && onPath('apt-get');
}

function installDebian(packages: readonly string[]): void {
  console.error(`test setup: installing ${packages.join(' ')} (Debian packages)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
}

export function preflight(): void {
  let missing = requirements.filter((r) => !r.present());
  const debian = [...new Set(missing.flatMap((r) => r.debian ?? []))];
  if (debian.length > 0 && canInstallDebian()) {
    installDebian(debian);
    missing = missing.filter((r) => !r.present());
  }
  if (missing.length > 0) {
    const lines = missing.map((r) => `${r.what}: ${r.hint}`);
    throw new Error(`test setup: this machine lacks what the tests need — ${lines.join('; ')}`);
  }
}
