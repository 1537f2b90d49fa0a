/**
 * Per-grant roles under `auth: {type: rds-iam}` end to end, through the gateway and the RDS
 * IAM front stand-in with RDS's membership rule on: the provisioning admin logs in with an IAM
 * token airlock mints, the grant's role is made an rds_iam member without a password, the
 * agent's psql session logs in upstream as that role with a token for it, and the role is
 * gone once the grant is revoked.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { startTestGateway, eventually, type TestGateway } from '../harness/gateway.ts';
import { startRdsIamFront, type RdsIamFront } from '../stand-ins/rds-iam-front.ts';
import { ADMIN, prepareDatabase } from './provision-fixture.ts';
import { AGENT, AGENT_NAME, psql } from './fixture.ts';

const AKID = 'AKIAAIRLOCKTESTRDS03';
const SECRET = 'airlock-rds-provisioned-secret-0123456789';
const REGION = 'eu-west-1';

let cluster: PostgresCluster;
let front: RdsIamFront;
let gw: TestGateway;

before(async () => {
  cluster = await startPostgresCluster();
  await prepareDatabase(cluster, { rdsIam: true });
  front = await startRdsIamFront({ cluster, region: REGION, secrets: { [AKID]: SECRET }, requireRdsIamMembership: true });
  gw = await startTestGateway({
    yaml: `
gateway:
  postgres: { listen: 127.0.0.1:0, tls: self-signed }
aws: { region: ${REGION} }
resources:
  reporting:
    type: postgres
    host: ${front.host}
    port: ${front.port}
    database: reporting
    tls: require
    region: ${REGION}
    auth: { type: rds-iam }
    provision: { user: ${ADMIN} }
    access:
      read: { privileges: [SELECT], tables: ["public.*"] }
policies:
  - { agents: ['${AGENT}'], resources: [reporting], access: [read], maxTtl: 15m, approval: none }
audit:
  durability: buffered
`,
    env: { AWS_ACCESS_KEY_ID: AKID, AWS_SECRET_ACCESS_KEY: SECRET, AWS_REGION: REGION },
  });
});
after(async () => {
  await gw?.close();
  await front?.stop();
  await cluster?.stop();
});

test('a provisioned grant under rds-iam logs in as its own rds_iam role with a token for it', async () => {
  const token = await gw.tokenFor(AGENT_NAME);
  const res = await gw.requestGrant(token, { resource: 'reporting', access: 'read', scope: { tables: ['sales'] }, ttl: '5m', task: 'rds iam provisioned' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const id = res.body.id!;
  const role = `airlock_${id.toLowerCase()}`;
  const attrs = await cluster.sql(`select rolpassword is null, pg_has_role(oid, 'rds_iam', 'member') from pg_authid where rolname = '${role}'`);
  assert.equal(attrs.trim(), 't|t', 'the role has no password and is an rds_iam member');

  const r = await psql(res.body.connect!.env, ['-c', 'select current_user, count(*) from sales']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `${role}|12`);
  assert.equal(front.accepted.at(-1), role, 'the RDS front accepted a token for the grant role');
  const denied = await psql(res.body.connect!.env, ['-c', 'select * from customers']);
  assert.match(denied.stderr, /permission denied for table customers/);

  const admin = await gw.adminToken();
  assert.equal((await gw.revoke(id, admin)).status, 200);
  await eventually(async () => ((await cluster.sql(`select count(*) from pg_roles where rolname = '${role}'`)).trim() === '0' ? true : undefined), 10_000, 'role dropped');
  assert.ok(gw.auditRecords().some((rec) => rec.type === 'pg.role.dropped' && rec.grant === id));
});
