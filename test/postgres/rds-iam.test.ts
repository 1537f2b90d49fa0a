/**
 * `auth: { type: rds-iam }` end to end: airlock mints a SigV4-presigned RDS IAM token with its
 * own AWS identity (from the environment, as the provider chain reads it) and logs in as the
 * access level's user through a stand-in of the RDS IAM front (test/stand-ins/rds-iam-front.ts),
 * which verifies the token as RDS does before relaying to the real local PostgreSQL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import type { HttpRequest } from '@smithy/protocol-http';
import { startCluster, startFixture, grant, psql, type PgFixture } from './fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { eventually } from '../harness/gateway.ts';
import { startRdsIamFront, verifyRdsIamToken, type RdsIamFront } from '../stand-ins/rds-iam-front.ts';
import { rdsIamToken } from '../../plugins/postgres/rds-iam.ts';

const AKID = 'AKIAAIRLOCKTESTRDS01';
const SECRET = 'airlock-rds-test-secret-key-0123456789ab';
const REGION = 'eu-west-1';

let cluster: PostgresCluster;
let front: RdsIamFront;
let f: PgFixture;
before(async () => {
  cluster = await startCluster();
  front = await startRdsIamFront({ cluster, region: REGION, secrets: { [AKID]: SECRET } });
  f = await startFixture(
    cluster,
    { port: front.port, tls: 'require', auth: '{ type: rds-iam }', extraResourceYaml: `    region: ${REGION}` },
    { AWS_ACCESS_KEY_ID: AKID, AWS_SECRET_ACCESS_KEY: SECRET, AWS_REGION: REGION },
  );
});
after(async () => {
  await f?.close();
  await front?.stop();
  await cluster?.stop();
});

test('a read grant logs in upstream as agent_ro with a verified RDS IAM token', async () => {
  const g = await grant(f, 'read');
  const r = await psql(g.env, ['-c', 'select current_user, count(*) from revenue']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'agent_ro|50');
  assert.equal(front.accepted.at(-1), 'agent_ro');
});

test('a write grant gets a token for agent_rw (DBUser follows the access level)', async () => {
  const g = await grant(f, 'write');
  const r = await psql(g.env, ['-c', "insert into notes(body) values ('via rds iam') returning current_user"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^agent_rw/);
  assert.equal(front.accepted.at(-1), 'agent_rw');
});

test('a token RDS would reject (signed with a key RDS does not know) fails the login cleanly', async () => {
  front.secrets.set(AKID, 'a-different-secret-than-airlock-has-000000');
  try {
    const g = await grant(f, 'read');
    const sql = postgres(g.url, { max: 1, ssl: 'require', connect_timeout: 10 });
    const err = await sql`select 1`.then(() => null, (e: { code?: string; message: string; detail?: string }) => e);
    await sql.end();
    assert.ok(err);
    // The server's own refusal reaches the client with its SQLSTATE (issue 17 item 4), marked as relayed.
    assert.equal(err.code, '28P01');
    assert.match(err.message, /PAM authentication failed/);
    assert.match(String(err.detail), /airlock relayed this error from the upstream server/);
    assert.equal(front.rejected.at(-1), 'signature does not match');
    const closed = await eventually(() => f.gw.auditRecords().find((x) => x.grant === g.id && x.type === 'session.closed'), 3000, 'session.closed');
    assert.equal(closed.data?.reason, 'error');
  } finally {
    front.secrets.set(AKID, SECRET);
  }
});

test('tokens are checked for user, endpoint, window and integrity (stand-in verifier against airlock\'s token)', async () => {
  const signer = new SignatureV4({ service: 'rds-db', region: REGION, credentials: { accessKeyId: AKID, secretAccessKey: SECRET }, sha256: Hash.bind(null, 'sha256') });
  const aws = {
    credentials: async () => ({ accessKeyId: AKID, secretAccessKey: SECRET }),
    presign: async (req: HttpRequest, o: { expiresIn: number; signingDate?: Date }) =>
      (await signer.presign(req, { expiresIn: o.expiresIn, ...(o.signingDate ? { signingDate: o.signingDate } : {}) })) as HttpRequest,
  };
  const secrets = new Map([[AKID, SECRET]]);
  const token = await rdsIamToken(aws, { resource: 'r', host: 'db.example.internal', port: 5432, user: 'agent_ro', region: REGION });
  assert.match(token, /^db\.example\.internal:5432\/\?/);
  assert.match(token, /X-Amz-Expires=900/);
  const check = { endpoint: 'db.example.internal:5432', user: 'agent_ro', region: REGION, secrets };
  assert.equal(verifyRdsIamToken(token, check), null);
  assert.match(verifyRdsIamToken(token, { ...check, user: 'agent_rw' }) ?? '', /DBUser/);
  assert.match(verifyRdsIamToken(token, { ...check, endpoint: 'db.example.internal:5433' }) ?? '', /not db.example.internal:5433/);
  assert.match(verifyRdsIamToken(token, { ...check, region: 'us-east-1' }) ?? '', /region/);
  assert.equal(verifyRdsIamToken(token.replace('Action=connect', 'Action=connect&DBUser2=x'), check), 'signature does not match');
  const old = await rdsIamToken(aws, { resource: 'r', host: 'db.example.internal', port: 5432, user: 'agent_ro', region: REGION, signingDate: new Date(Date.now() - 16 * 60_000) });
  assert.equal(verifyRdsIamToken(old, check), 'token expired');
  const recent = await rdsIamToken(aws, { resource: 'r', host: 'db.example.internal', port: 5432, user: 'agent_ro', region: REGION, signingDate: new Date(Date.now() - 14 * 60_000) });
  assert.equal(verifyRdsIamToken(recent, check), null);
});

test('the stand-in refuses a login without TLS (so the token never crosses in the clear)', async () => {
  const r = await psql({ PGHOST: front.host, PGPORT: String(front.port), PGUSER: 'agent_ro', PGDATABASE: 'reporting', PGSSLMODE: 'disable', PGPASSWORD: 'x' }, ['-c', 'select 1']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no encryption/);
});
