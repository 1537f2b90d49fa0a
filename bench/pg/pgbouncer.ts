/**
 * pgbouncer in session pooling mode: the closest peer to airlock's Postgres relay (one server
 * connection per client connection for the client's lifetime). Clients authenticate with
 * SCRAM-SHA-256 as they do to airlock; server connections are plain TCP like airlock's in
 * the bench. pgbouncer refuses to run as root, so as root it runs as the `postgres` user from
 * a directory that user owns.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/harness/postgres-cluster.ts';
import { isRoot } from '../lib/tools.ts';
import { sleep } from '../lib/proc.ts';

export interface Pgbouncer {
  host: string;
  port: number;
  /** The pgbouncer process itself (from its pidfile), for /proc readings. */
  pid: number;
  stop(): Promise<void>;
}

export interface PgbouncerOptions {
  binary: string;
  upstreamPort: number;
  database: string;
  user: string;
  password: string;
  /** Highest number of client connections at once. */
  maxClients: number;
}

function postgresIds(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  };
}

export async function startPgbouncer(o: PgbouncerOptions): Promise<Pgbouncer> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-pgbouncer-'));
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  const users = join(dir, 'userlist.txt');
  const pidfile = join(dir, 'pgbouncer.pid');
  const logfile = join(dir, 'pgbouncer.log');
  writeFileSync(users, `"${o.user}" "${o.password}"\n`, { mode: 0o600 });
  writeFileSync(
    ini,
    [
      '[databases]',
      `${o.database} = host=127.0.0.1 port=${o.upstreamPort} dbname=${o.database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = scram-sha-256',
      `auth_file = ${users}`,
      'pool_mode = session',
      `max_client_conn = ${o.maxClients + 10}`,
      `default_pool_size = ${o.maxClients + 10}`,
      'server_tls_sslmode = disable',
      'client_tls_sslmode = disable',
      `pidfile = ${pidfile}`,
      `logfile = ${logfile}`,
      'log_connections = 0',
      'log_disconnections = 0',
      'log_pooler_errors = 1',
      'stats_period = 3600',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  if (isRoot) {
    const { uid, gid } = postgresIds();
    for (const p of [dir, ini, users]) chownSync(p, uid, gid);
  }
  // runuser starts with the PAM soft limit of open files (often 1024); a thousand clients
  // plus their server connections need more, so raise it to the hard limit first.
  const script = `ulimit -n "$(ulimit -Hn)" && exec "$0" "$1"`;
  const [cmd, args] = isRoot ? ['runuser', ['-u', 'postgres', '--', 'sh', '-c', script, o.binary, ini]] : ['sh', ['-c', script, o.binary, ini]];
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));

  let pid = 0;
  const stop = async () => {
    if (!exited) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      // runuser may not pass signals on: signal pgbouncer itself when its pid is known.
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready once the pidfile exists and the port accepts connections.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      const log = existsSync(logfile) ? readFileSync(logfile, 'utf8') : '';
      await stop();
      throw new Error(`pgbouncer exited at start: ${(output + log).trim().slice(-2000)}`);
    }
    if (existsSync(pidfile) && (await canConnect(port))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`pgbouncer not ready after 15 s: ${output.trim().slice(-2000)}`);
    }
    await sleep(50);
  }
  pid = Number(readFileSync(pidfile, 'utf8').trim());
  return { host: '127.0.0.1', port, pid, stop };
}

async function canConnect(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return await new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
