/**
 * The per-grant role provisioner against a real PostgreSQL 15, with a non-superuser
 * CREATEROLE admin: what the role can and cannot do, what the catalogue shows, the drop at
 * the grant's end (live sessions cut), 200 cycles without residue, and the start-up sweep.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { eventually } from '../harness/gateway.ts';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { RoleProvisioner } from '../../plugins/postgres/provision/provisioner.ts';
import { ADMIN, ADMIN_PASSWORD, connectAs, errorOf, makeGrant, prepareDatabase, recorder, resource } from './provision-fixture.ts';

let cluster: PostgresCluster;
let prov: RoleProvisioner;
const rec = recorder();
const r = resource();

before(async () => {
  cluster = await startPostgresCluster();
  await prepareDatabase(cluster);
  prov = new RoleProvisioner({
    admin: { host: cluster.host, port: cluster.port, database: 'reporting', user: ADMIN, password: ADMIN_PASSWORD, tls: 'require' },
    rdsIam: false,
    record: rec.record,
  });
});
after(async () => {
  await prov?.close();
  await cluster?.stop();
});

const q = (text: string) => cluster.sql(text, 'reporting').then((s) => s.trim());

test('a grant scoped to sales reads sales and nothing else, as its own role', async () => {
  const g = makeGrant(r, 'read', { tables: ['sales'] });
  const made = await prov.activate(g);
  assert.equal(made.role, `airlock_${g.id.toLowerCase()}`);
  assert.deepEqual(made.tables, ['public.sales']);
  assert.deepEqual(made.privileges, ['SELECT']);
  assert.ok(made.password && made.password.length >= 40);
  const sql = connectAs(cluster, made.role, made.password);
  try {
    const [who] = await sql<{ current_user: string; n: string }[]>`select current_user, (select count(*) from sales) as n`;
    assert.deepEqual({ ...who }, { current_user: made.role, n: '12' });
    assert.match((await errorOf(sql`select * from customers`)).message, /permission denied for table customers/);
    assert.match((await errorOf(sql`select * from vault.secrets`)).message, /permission denied for schema vault/);
    assert.match((await errorOf(sql`insert into sales (month, amount) values ('x', 1)`)).message, /permission denied for table sales/);
    assert.match((await errorOf(sql`update sales set amount = 0`)).message, /permission denied for table sales/);
    assert.match((await errorOf(sql`delete from sales`)).message, /permission denied for table sales/);
    assert.match((await errorOf(sql`create table public.mine (a int)`)).message, /permission denied for schema public/);
    const grants = await sql<{ g: string }[]>`select table_schema || '.' || table_name || ':' || privilege_type as g from information_schema.role_table_grants where grantee = current_user order by 1`;
    assert.deepEqual(grants.map((x) => x.g), ['public.sales:SELECT']);
    for (const target of [ADMIN, 'postgres']) {
      assert.match((await errorOf(sql.unsafe(`set role ${target}`))).message, new RegExp(`permission denied to set role "${target}"`));
      assert.match((await errorOf(sql.unsafe(`set session authorization ${target}`))).message, /permission denied to set session authorization/);
    }
  } finally {
    await sql.end();
  }
  const attrs = await q(`select rolcanlogin, rolinherit, rolcreatedb, rolcreaterole, rolreplication, rolsuper, rolconnlimit, rolvaliduntil = '${g.expiresAt}'::timestamptz from pg_roles where rolname = '${made.role}'`);
  assert.equal(attrs, 't|f|f|f|f|f|10|t');
  assert.equal(await q(`select count(*) from pg_auth_members m join pg_roles r on r.oid = m.member where r.rolname = '${made.role}'`), '0');
  assert.ok(!(await q(`select rolpassword from pg_authid where rolname = '${made.role}'`)).includes(made.password!), 'only a SCRAM verifier is stored');
  const created = rec.records.find((x) => x.type === 'pg.role.created' && x.data.role === made.role);
  assert.deepEqual(created?.data, { role: made.role, tables: ['public.sales'], privileges: ['SELECT'], grant: g.id });
  assert.ok(!JSON.stringify(rec.records).includes(made.password!), 'the password is never recorded');
  assert.equal(await prov.end(g, 'expired'), true);
});

test('an unscoped level gets its patterns resolved now; INSERT brings the owned sequences', async () => {
  const read = await prov.activate(makeGrant(r, 'read'));
  assert.deepEqual(read.tables, ['public.customers', 'public.sales']);
  const g = makeGrant(r, 'write', { tables: ['sales'] });
  const w = await prov.activate(g, { connectionLimit: 3 });
  const sql = connectAs(cluster, w.role, w.password!);
  try {
    const [row] = await sql<{ id: number }[]>`insert into sales (month, amount) values ('w', 5) returning id`;
    assert.ok(row!.id > 12);
    assert.match((await errorOf(sql`delete from sales`)).message, /permission denied for table sales/);
    const grants = await sql<{ g: string }[]>`select privilege_type as g from information_schema.role_table_grants where grantee = current_user order by 1`;
    assert.deepEqual(grants.map((x) => x.g), ['INSERT', 'SELECT', 'UPDATE']);
    const [seq] = await sql<{ u: boolean }[]>`select has_sequence_privilege('sales_id_seq', 'USAGE') as u`;
    assert.equal(seq!.u, true);
  } finally {
    await sql.end();
  }
  assert.equal(await q(`select rolconnlimit from pg_roles where rolname = '${w.role}'`), '3');
  await prov.end(g, 'revoked');
  await prov.end({ id: read.role.slice('airlock_'.length).toUpperCase() }, 'revoked');
});

test('activation fails closed: a missing table or a pending grant makes no role', async () => {
  const wide = resource();
  const g = makeGrant(wide, 'everything', { tables: ['public.nope', 'vault.*'] });
  await assert.rejects(prov.activate(g), /table public\.nope does not exist/);
  assert.equal(await q(`select count(*) from pg_roles where rolname = 'airlock_${g.id.toLowerCase()}'`), '0');
  await assert.rejects(prov.activate({ ...makeGrant(r, 'read'), expiresAt: null }), /no expiry yet/);
});

test('end() terminates the live backends of the role and drops it', async () => {
  const g = makeGrant(r, 'read', { tables: ['sales'] });
  const made = await prov.activate(g);
  // A real client in the middle of a long statement as the role.
  const child = spawn('psql', ['-X', '-At', '-c', 'select pg_sleep(60)'], {
    env: { PATH: process.env.PATH ?? '', PGHOST: cluster.host, PGPORT: String(cluster.port), PGDATABASE: 'reporting', PGUSER: made.role, PGPASSWORD: made.password!, PGSSLMODE: 'require' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => {
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    await eventually(async () => (await q(`select count(*) from pg_stat_activity where usename = '${made.role}' and query like '%pg_sleep%'`)) === '1' || undefined, 10_000, 'psql session running');
    assert.equal(await prov.end(g, 'revoked'), true);
    const { code, stderr } = await exited;
    assert.notEqual(code, 0);
    assert.match(stderr, /terminating connection due to administrator command/);
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await q(`select count(*) from pg_roles where rolname = '${made.role}'`), '0');
  assert.equal(await q(`select count(*) from pg_stat_activity where usename = '${made.role}'`), '0');
  assert.deepEqual(rec.records.at(-1), { type: 'pg.role.dropped', data: { role: made.role, reason: 'revoked', grant: g.id } });
  assert.equal(await prov.credentials(g.id), undefined);
  assert.equal(await prov.end(g, 'revoked'), false, 'a second end is a no-op');
});

async function residue(): Promise<string> {
  return await q(`select (select count(*) from pg_roles where rolname like 'airlock\\_ag%') || '|' ||
                         (select count(*) from pg_auth_members) || '|' ||
                         (select count(*) from pg_default_acl) || '|' ||
                         (select count(*) from pg_shdepend) || '|' ||
                         (select count(*) from pg_class where relacl::text like '%airlock\\_ag%') || '|' ||
                         (select count(*) from pg_namespace where nspacl::text like '%airlock\\_ag%') || '|' ||
                         (select count(*) from pg_database where datacl::text like '%airlock\\_ag%')`);
}

test('concurrent activations and ends on the same tables do not collide (GRANT rewrites the ACL unlocked)', async () => {
  const grants = Array.from({ length: 8 }, () => makeGrant(r, 'read', { tables: ['sales'] }));
  const made = await Promise.all(grants.map((g) => prov.activate(g)));
  assert.equal(new Set(made.map((m) => m.role)).size, 8);
  assert.deepEqual(await Promise.all(grants.map((g) => prov.end(g, 'revoked'))), grants.map(() => true));
  assert.equal(await q(`select count(*) from pg_roles where rolname like 'airlock\\_ag%'`), '0');
});

test('200 activate/end cycles leave no airlock_* role and no other residue', { timeout: 600_000 }, async () => {
  const before = await residue();
  assert.match(before, /^0\|/);
  for (let i = 0; i < 200; i++) {
    const g = makeGrant(r, i % 2 ? 'write' : 'read');
    await prov.activate(g);
    await prov.end(g, i % 3 ? 'expired' : 'revoked');
  }
  assert.equal(await residue(), before);
});

test('sweep drops the grant roles whose grant is no longer active, and nothing else', async () => {
  const grants = [makeGrant(r, 'read'), makeGrant(r, 'read'), makeGrant(r, 'write')];
  const made = await Promise.all(grants.map((g) => prov.activate(g)));
  // Roles that are not this database's grant roles stay whatever their name.
  await cluster.sql(`create role airlock_agaaaaaaaaaaaaaaaaaa nologin; comment on role airlock_agaaaaaaaaaaaaaaaaaa is 'airlock grant role for database elsewhere'; create role airlock_bystander nologin;`);
  try {
    // A second provisioner, as after a restart: it knows nothing but what the store says is active.
    const restarted = new RoleProvisioner({ admin: { host: cluster.host, port: cluster.port, database: 'reporting', user: ADMIN, password: ADMIN_PASSWORD, tls: 'require' }, rdsIam: false, record: rec.record });
    try {
      const dropped = await restarted.sweep([grants[1]!.id]);
      assert.deepEqual(dropped.sort(), [made[0]!.role, made[2]!.role].sort());
      const left = await q(`select string_agg(rolname, ',' order by rolname) from pg_roles where rolname like 'airlock%'`);
      assert.equal(left, [ADMIN, 'airlock_agaaaaaaaaaaaaaaaaaa', made[1]!.role, 'airlock_bystander'].sort().join(','));
      assert.ok(rec.records.some((x) => x.type === 'pg.role.dropped' && x.data.role === made[0]!.role && x.data.reason === 'sweep'));
      // The restarted process re-activates the surviving grant: same role, a fresh password.
      const again = await restarted.activate(grants[1]!);
      const sql = connectAs(cluster, again.role, again.password!);
      try {
        assert.equal((await sql<{ u: string }[]>`select current_user as u`)[0]!.u, made[1]!.role);
      } finally {
        await sql.end();
      }
      assert.deepEqual(await restarted.sweep([]), [made[1]!.role]);
    } finally {
      await restarted.close();
    }
  } finally {
    await cluster.sql('drop role airlock_agaaaaaaaaaaaaaaaaaa; drop role airlock_bystander;');
  }
});

test('GrantRoles: the lifecycle glue makes, serves and drops the role of a provisioned grant only', async () => {
  const { GrantRoles } = await import('../../plugins/postgres/provision/grant-roles.ts');
  const records: Array<[string, string, Record<string, unknown>]> = [];
  const roles = new GrantRoles(new Map([['reporting', { ...r, port: cluster.port }]]), {
    env: { ADMIN_PW: ADMIN_PASSWORD },
    aws: { region: 'us-east-1', credentials: async () => ({ accessKeyId: 'x', secretAccessKey: 'y' }), presign: async () => { throw new Error('no IAM here'); } },
    record: (type, resourceName, data) => records.push([type, resourceName, data]),
  });
  try {
    const base = { agent: 'local:bot', resource: 'reporting', resourceType: 'postgres', task: 't', status: 'active' as const, createdAt: new Date().toISOString(), ttlMs: 600_000 };
    const p = makeGrant(r, 'read', { tables: ['sales'] });
    const provisioned = { ...base, ...p, access: 'read' };
    const staticGrant = { ...base, id: makeGrant(r, 'read').id, access: 'ops', expiresAt: p.expiresAt, scope: { database: 'reporting', user: 'agent_rw' } };
    await roles.onGrantActive(staticGrant);
    assert.equal(await roles.credentials(staticGrant), undefined);
    await roles.onGrantActive(provisioned, { connectionLimit: 5 });
    const creds = await roles.credentials(provisioned);
    assert.equal(creds?.role, `airlock_${p.id.toLowerCase()}`);
    assert.equal(await q(`select rolconnlimit from pg_roles where rolname = '${creds!.role}'`), '5');
    assert.deepEqual(records.map(([t, n]) => [t, n]), [['pg.role.created', 'reporting']]);
    // A restart: a new instance sweeps with the active list and re-makes the survivor's login.
    const again = new GrantRoles(new Map([['reporting', { ...r, port: cluster.port }]]), { env: { ADMIN_PW: ADMIN_PASSWORD }, aws: { region: 'us-east-1', credentials: async () => ({ accessKeyId: 'x', secretAccessKey: 'y' }), presign: async () => { throw new Error('no IAM'); } }, record: () => {} });
    try {
      await again.sweep([provisioned, staticGrant]);
      const fresh = await again.credentials(provisioned);
      assert.equal(fresh?.role, creds!.role);
      const sql = connectAs(cluster, fresh!.role, fresh!.password!);
      try {
        const [row] = await sql<{ u: string; n: string }[]>`select current_user as u, (select count(*) from sales) > 0 as n`;
        assert.deepEqual({ ...row }, { u: creds!.role, n: true });
      } finally {
        await sql.end();
      }
    } finally {
      await again.close();
    }
    await roles.onGrantEnded(provisioned, 'revoked');
    await roles.onGrantEnded(staticGrant, 'revoked');
    assert.equal(await q(`select count(*) from pg_roles where rolname = '${creds!.role}'`), '0');
    assert.deepEqual(records.at(-1)?.[0], 'pg.role.dropped');
  } finally {
    await roles.close();
  }
});
