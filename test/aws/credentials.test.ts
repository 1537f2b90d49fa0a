/**
 * airlock's per-grant role sessions against moto's STS (signature + IAM enforcement on):
 * one AssumeRole per grant however many requests race for it, a fresh one only shortly
 * before expiry, failures not cached, names sanitized to what STS accepts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createAwsLayer, type AwsLayer } from '../../core/aws/index.ts';
import { sanitizeIamName, sessionSecondsFor } from '../../core/aws/credentials.ts';
import { startMoto, type Moto } from '../harness/moto.ts';
import { FakeGrants, makeGrant } from './fake-grants.ts';

let moto: Moto;
let roleArn: string;
let clock = Date.now();
let layer: AwsLayer;

before(async () => {
  moto = await startMoto();
  const user = await moto.createUser('airlock-sts-test', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] });
  roleArn = await moto.createRole(
    'airlock-cache-test',
    { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: user.arn }, Action: 'sts:AssumeRole' }] },
    { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: '*' }] },
  );
  await moto.enableAuth();
  layer = createAwsLayer({
    region: 'us-east-1',
    endpoints: { sts: moto.endpoint },
    roles: new Map([
      ['orders', { roleArn, region: 'us-east-1' }],
      ['plain', { region: 'us-east-1' }],
    ]),
    log: pino({ level: 'silent' }),
    credentials: async () => ({ accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey }),
    now: () => clock,
  });
});
after(async () => {
  await layer?.close();
  await moto?.stop();
});

async function sessionsNamed(name: string): Promise<Array<{ session_name: string; policy: string | null }>> {
  const data = (await (await fetch(`${moto.endpoint}/moto-api/data.json`)).json()) as { sts?: { AssumedRole?: Array<{ session_name: string; policy: string | null }> } };
  return (data.sts?.AssumedRole ?? []).filter((r) => r.session_name === name);
}

describe('per-grant role sessions', () => {
  it('assumes once for concurrent requests of one grant, with the grant id as session name', async () => {
    const aws = layer.forPlugin(new FakeGrants('dynamodb'));
    const grant = makeGrant({ id: 'AGCCCCCCCCCCCCCCCCCC', expiresAt: new Date(clock + 10 * 60_000).toISOString() });
    const before = layer.assumeRoleCalls();
    const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['dynamodb:GetItem'], Resource: ['arn:aws:dynamodb:us-east-1:*:table/orders'] }] };
    const creds = await Promise.all(Array.from({ length: 8 }, () => aws.credentials({ resource: 'orders', grant, sessionPolicy: policy })));
    assert.equal(layer.assumeRoleCalls() - before, 1);
    assert.equal(new Set(creds.map((c) => c.accessKeyId)).size, 1);
    assert.ok(creds[0]?.sessionToken);
    const sessions = await sessionsNamed(grant.id);
    assert.equal(sessions.length, 1);
    assert.deepEqual(JSON.parse(sessions[0]?.policy ?? 'null'), policy);
  });

  it('assumes again only shortly before the session expires', async () => {
    const aws = layer.forPlugin(new FakeGrants('dynamodb'));
    const grant = makeGrant({ id: 'AGDDDDDDDDDDDDDDDDDD', expiresAt: new Date(clock + 60 * 60_000).toISOString() });
    const first = await aws.credentials({ resource: 'orders', grant });
    const expiration = first.expiration?.getTime() ?? 0;
    assert.ok(expiration > clock, 'moto reports an expiration');
    const calls = layer.assumeRoleCalls();
    clock = expiration - 5 * 60_000;
    await aws.credentials({ resource: 'orders', grant });
    assert.equal(layer.assumeRoleCalls(), calls, 'still cached five minutes before expiry');
    clock = expiration - 60_000;
    const renewed = await aws.credentials({ resource: 'orders', grant });
    assert.equal(layer.assumeRoleCalls(), calls + 1, 'renewed within the refresh margin');
    assert.notEqual(renewed.accessKeyId, first.accessKeyId);
    clock = Date.now();
  });

  it('does not cache a failed AssumeRole', async () => {
    const broken = createAwsLayer({
      region: 'us-east-1',
      endpoints: { sts: moto.endpoint },
      roles: new Map([['orders', { roleArn }]]),
      log: pino({ level: 'silent' }),
      credentials: async () => ({ accessKeyId: 'AKIANOTAREALKEY00000', secretAccessKey: 'nope' }),
    });
    const aws = broken.forPlugin(new FakeGrants('dynamodb'));
    const grant = makeGrant({ id: 'AGEEEEEEEEEEEEEEEEEE' });
    await assert.rejects(aws.credentials({ resource: 'orders', grant }), /could not assume its role/);
    await assert.rejects(aws.credentials({ resource: 'orders', grant }), /could not assume its role/);
    assert.equal(broken.assumeRoleCalls(), 2);
    await broken.close();
  });

  it('uses airlock own credentials for resources without a role', async () => {
    const aws = layer.forPlugin(new FakeGrants('dynamodb'));
    const calls = layer.assumeRoleCalls();
    const creds = await aws.credentials({ resource: 'plain', grant: makeGrant({ id: 'AGFFFFFFFFFFFFFFFFFF' }) });
    assert.equal(creds.sessionToken, undefined);
    assert.equal(layer.assumeRoleCalls(), calls);
  });

  it('sizes sessions to the grant within what STS allows, and sanitizes names', () => {
    const now = Date.now();
    const at = (ms: number) => makeGrant({ id: 'AGX', expiresAt: new Date(now + ms).toISOString() });
    assert.equal(sessionSecondsFor(at(2 * 60_000), now), 900);
    assert.equal(sessionSecondsFor(at(20 * 60_000), now), 20 * 60 + 60);
    assert.equal(sessionSecondsFor(at(5 * 3600_000), now), 3600);
    assert.equal(sanitizeIamName('local:report-bot'), 'local_report-bot');
    assert.equal(sanitizeIamName('x'), 'x_');
    assert.equal(sanitizeIamName('a'.repeat(100)).length, 64);
  });
});
