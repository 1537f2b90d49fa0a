/**
 * Provisioning under `auth: {type: rds-iam}`, through the stand-in of the RDS IAM front
 * (test/stand-ins/rds-iam-front.ts) with RDS's membership rule on: the admin logs in with an
 * IAM token airlock mints, the grant role gets `rds_iam` and no password, and a token for
 * the role logs in as it — until the role is dropped.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import type { HttpRequest } from '@smithy/protocol-http';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { startRdsIamFront, type RdsIamFront } from '../stand-ins/rds-iam-front.ts';
import { provisionerForResource, type RoleProvisioner } from '../../plugins/postgres/provision/index.ts';
import { rdsIamToken } from '../../plugins/postgres/rds-iam.ts';
import { ADMIN, errorOf, makeGrant, prepareDatabase, recorder, resource } from './provision-fixture.ts';

const AKID = 'AKIAAIRLOCKTESTRDS02';
const SECRET = 'airlock-rds-provision-secret-0123456789';
const REGION = 'eu-west-1';
const signer = new SignatureV4({ service: 'rds-db', region: REGION, credentials: { accessKeyId: AKID, secretAccessKey: SECRET }, sha256: Hash.bind(null, 'sha256') });
const aws = {
  region: REGION,
  credentials: async () => ({ accessKeyId: AKID, secretAccessKey: SECRET }),
  presign: async (req: HttpRequest, o: { expiresIn: number; signingDate?: Date }) =>
    (await signer.presign(req, { expiresIn: o.expiresIn, ...(o.signingDate ? { signingDate: o.signingDate } : {}) })) as HttpRequest,
};

let cluster: PostgresCluster;
let front: RdsIamFront;
let prov: RoleProvisioner;
const rec = recorder();

before(async () => {
  cluster = await startPostgresCluster();
  await prepareDatabase(cluster, { rdsIam: true });
  await cluster.sql('create role not_iam login');
  front = await startRdsIamFront({ cluster, region: REGION, secrets: { [AKID]: SECRET }, requireRdsIamMembership: true });
  const r = { ...resource('rds-iam', front.port), region: REGION };
  const p = provisionerForResource('reporting', r, { env: {}, aws, record: rec.record });
  if (!p) throw new Error('a resource with provisioned levels has a provisioner');
  prov = p;
});
after(async () => {
  await prov?.close();
  await front?.stop();
  await cluster?.stop();
});

function loginWithToken(user: string) {
  return postgres({
    host: front.host, port: front.port, database: 'reporting', username: user, ssl: { rejectUnauthorized: false }, max: 1, connect_timeout: 10, onnotice: () => {},
    password: () => rdsIamToken(aws, { resource: 'reporting', host: front.host, port: front.port, user, region: REGION }),
  });
}

test('the admin logs in with an IAM token; the grant role is an rds_iam member without a password', async () => {
  const r = { ...resource('rds-iam', front.port), region: REGION };
  const g = makeGrant(r, 'read', { tables: ['sales'] });
  const made = await prov.activate(g);
  assert.equal(made.password, undefined);
  assert.ok(front.accepted.includes(ADMIN), 'the admin came in through the IAM front');
  assert.equal((await cluster.sql(`select rolpassword is null from pg_authid where rolname = '${made.role}'`)).trim(), 't');
  assert.equal((await cluster.sql(`select string_agg(g.rolname, ',') from pg_auth_members m join pg_roles g on g.oid = m.roleid join pg_roles u on u.oid = m.member where u.rolname = '${made.role}'`)).trim(), 'rds_iam');

  const sql = loginWithToken(made.role);
  try {
    const [row] = await sql<{ u: string; n: string }[]>`select current_user as u, (select count(*) from sales) as n`;
    assert.deepEqual({ ...row }, { u: made.role, n: '12' });
    assert.match((await errorOf(sql`select * from customers`)).message, /permission denied for table customers/);
  } finally {
    await sql.end();
  }
  assert.equal(front.accepted.at(-1), made.role);

  await prov.end(g, 'expired');
  const after = loginWithToken(made.role);
  try {
    assert.match((await errorOf(after`select 1`)).message, /PAM authentication failed/);
  } finally {
    await after.end();
  }
  assert.equal(front.rejected.at(-1), `role ${made.role} is not a member of rds_iam`);
});

test('the stand-in refuses a valid token for a role outside rds_iam, as RDS does', async () => {
  const sql = loginWithToken('not_iam');
  try {
    assert.match((await errorOf(sql`select 1`)).message, /PAM authentication failed for user "not_iam"/);
  } finally {
    await sql.end();
  }
  assert.equal(front.rejected.at(-1), 'role not_iam is not a member of rds_iam');
});
