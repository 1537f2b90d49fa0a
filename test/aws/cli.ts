/**
 * Run the aws CLI as an agent would: only the grant's `connect.env` (plus a clean config),
 * never the tester's own AWS settings. v1 is the `aws` first on PATH (botocore); v2 is
 * Debian's `awscli` package at /usr/bin/aws. A missing CLI fails the test, saying why.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface AwsCli {
  path: string;
  major: 1 | 2;
  version: string;
}

/** Environment for the CLI: the grant's variables and nothing of the host's AWS set-up. */
export function cliEnv(grantEnv: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v;
  return {
    ...env,
    ...grantEnv,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    AWS_MAX_ATTEMPTS: '1',
    AWS_RETRY_MODE: 'standard',
  };
}

async function versionOf(path: string): Promise<string> {
  try {
    const out = await run(path, ['--version'], { timeout: 30_000, env: cliEnv({}) });
    return `${out.stdout}${out.stderr}`.trim();
  } catch (e) {
    throw new Error(`aws CLI at ${path} cannot run: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The aws CLI of the given major version, or an error naming what to install. */
export async function findAwsCli(major: 1 | 2): Promise<AwsCli> {
  const path = major === 1 ? 'aws' : '/usr/bin/aws';
  const version = await versionOf(path).catch((e: unknown) => {
    const hint = major === 1 ? 'install the Python awscli (v1) so `aws` on PATH is v1' : 'apt-get install -y awscli (Debian ships v2)';
    throw new Error(`${e instanceof Error ? e.message : String(e)}; ${hint}`);
  });
  const m = /aws-cli\/(\d+)\./.exec(version);
  if (!m || Number(m[1]) !== major) throw new Error(`expected aws CLI v${major} at ${path}, found: ${version}`);
  return { path, major, version };
}

export async function aws(cli: AwsCli, args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  try {
    const out = await run(cli.path, args, { env, timeout: 60_000, maxBuffer: 8 * 1024 * 1024 });
    return { code: 0, stdout: out.stdout, stderr: out.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
