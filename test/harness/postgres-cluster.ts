/**
 * A throwaway PostgreSQL cluster for tests and benches: the machine's own PostgreSQL binaries
 * (`pg_config --bindir`), a temp data directory, a random loopback port, scram-sha-256 for TCP
 * logins and TLS on with a freshly generated self-signed certificate (so upstream
 * `tls: require` is exercised for real).
 *
 * As root, initdb/pg_ctl/postgres refuse to run, so they run as the `postgres` OS user via
 * runuser, in a temp directory that user owns. Everything here fails loudly: a test that needs
 * Postgres must not pass or skip when Postgres cannot start.
 */
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { stopOnExit } from './reaper.ts';

const execFileAsync = promisify(execFile);

export interface PostgresClusterOptions {
  /** Extra lines appended to postgresql.conf. */
  extraConf?: string[];
  /** Turn TLS off (default on). */
  ssl?: boolean;
  /** Server-side password hashing for roles created later: scram-sha-256 (default) or md5. */
  passwordEncryption?: 'scram-sha-256' | 'md5';
  /** pg_hba method for TCP logins (default scram-sha-256). */
  hostAuth?: 'scram-sha-256' | 'md5' | 'password' | 'trust';
}

export interface PostgresCluster {
  readonly host: string;
  readonly port: number;
  readonly superuser: string;
  readonly superuserPassword: string;
  readonly dir: string;
  /** PEM of the server's self-signed certificate (empty when ssl is off). */
  readonly certPem: string;
  connectionString(user: string, password: string, database?: string): string;
  /** Run SQL as the superuser through psql (ON_ERROR_STOP); returns unaligned tuples-only output. */
  sql(text: string, database?: string): Promise<string>;
  /** Stop the server (pg_ctl stop -m fast), keeping its data; `resume()` starts it again on the same port. */
  halt(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

function binDir(): string {
  let dir: string;
  try {
    dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch (e) {
    throw new Error(`PostgreSQL cluster: pg_config not found on PATH (install postgresql-15): ${String(e)}`);
  }
  for (const bin of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(join(dir, bin))) throw new Error(`PostgreSQL cluster: ${bin} missing in ${dir}`);
  }
  return dir;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function pgUserIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('PostgreSQL cluster: no `postgres` OS user to run the server as root');
  return { uid, gid };
}

/** Run a server binary: as `postgres` when we are root, directly otherwise. */
async function runAsOwner(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    const { stdout } = await execFileAsync(cmd, argv, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 16 << 20 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`PostgreSQL cluster: ${bin} ${args.join(' ')} failed: ${err.stderr || err.stdout || err.message}`);
  }
}

function makeOwnedDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-pg-'));
  if (isRoot) {
    const { uid, gid } = pgUserIds();
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  return dir;
}

function writeOwned(path: string, content: string, mode = 0o600): void {
  writeFileSync(path, content, { mode });
  if (isRoot) {
    const { uid, gid } = pgUserIds();
    chownSync(path, uid, gid);
  }
}

/** A self-signed certificate for CN=localhost with SAN 127.0.0.1 (openssl CLI). */
export function generateSelfSignedCert(dir: string, name = 'server'): { certPath: string; keyPath: string; certPem: string; keyPem: string } {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`self-signed certificate: openssl failed: ${String(e)}`);
  }
  return { certPath, keyPath, certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') };
}

export async function startPostgresCluster(opts: PostgresClusterOptions = {}): Promise<PostgresCluster> {
  const bin = binDir();
  const dir = makeOwnedDir();
  const data = join(dir, 'data');
  const superuser = 'postgres';
  const superuserPassword = randomBytes(12).toString('hex');
  const pwfile = join(dir, 'pwfile');
  writeOwned(pwfile, superuserPassword + '\n');
  const hostAuth = opts.hostAuth ?? 'scram-sha-256';
  try {
    await runAsOwner(join(bin, 'initdb'), [
      '-D', data, '-U', superuser, '--pwfile', pwfile, '-E', 'UTF8', '--locale=C',
      '--auth-local=trust', `--auth-host=${hostAuth}`, '--no-sync', '--no-instructions',
    ]);
    const ssl = opts.ssl ?? true;
    let certPem = '';
    const conf: string[] = [
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      `fsync = off`, `synchronous_commit = off`, `full_page_writes = off`,
      `max_connections = 200`, `shared_buffers = 32MB`,
      `password_encryption = '${opts.passwordEncryption ?? 'scram-sha-256'}'`,
      `log_min_messages = warning`,
    ];
    if (ssl) {
      const cert = generateSelfSignedCert(dir);
      if (isRoot) {
        const { uid, gid } = pgUserIds();
        chownSync(cert.certPath, uid, gid);
        chownSync(cert.keyPath, uid, gid);
      }
      chmodSync(cert.keyPath, 0o600);
      certPem = cert.certPem;
      conf.push(`ssl = on`, `ssl_cert_file = '${cert.certPath}'`, `ssl_key_file = '${cert.keyPath}'`);
    }
    conf.push(...(opts.extraConf ?? []));
    appendFileSync(join(data, 'postgresql.conf'), '\n' + conf.join('\n') + '\n');

    // A port can be taken between picking and binding: retry a few times.
    let port = 0;
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      port = await freePort();
      try {
        await runAsOwner(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-o', `-p ${port}`, '-w', '-t', '60', 'start']);
        lastError = undefined;
        break;
      } catch (e) {
        lastError = e;
      }
    }
    if (lastError) {
      const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : '';
      throw new Error(`${String(lastError)}\n${log}`);
    }

    const host = '127.0.0.1';
    let stopped = false;
    // If the test process dies before stop(), the server must not outlive it.
    const forget = stopOnExit(() => {
      const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']] : [join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']];
      try {
        execFileSync(cmd, argv, { stdio: 'ignore', timeout: 10_000 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    let halted = false;
    const cluster: PostgresCluster = {
      host, port, superuser, superuserPassword, dir, certPem,
      connectionString(user, password, database = 'postgres') {
        return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;
      },
      async sql(text, database = 'postgres') {
        try {
          const { stdout } = await execFileAsync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', host, '-p', String(port), '-U', superuser, '-d', database, '-c', text], {
            env: { ...process.env, PGPASSWORD: superuserPassword, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' },
            encoding: 'utf8', maxBuffer: 64 << 20,
          });
          return stdout;
        } catch (e) {
          const err = e as { stderr?: string; message: string };
          throw new Error(`psql failed: ${err.stderr || err.message}`);
        }
      },
      async halt() {
        await runAsOwner(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
        halted = true;
      },
      async resume() {
        await runAsOwner(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-o', `-p ${port}`, '-w', '-t', '60', 'start']);
        halted = false;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        forget();
        try {
          if (!halted) await runAsOwner(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
    return cluster;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
