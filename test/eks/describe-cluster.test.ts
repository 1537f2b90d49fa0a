/**
 * Without endpoint/caFile, airlock finds the cluster with EKS DescribeCluster, signed with
 * its own identity. moto (with signature and IAM enforcement on) proves the signing and the
 * IAM action; moto's made-up CA data is not a certificate, which must fail closed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/protocol-http';
import { Hash } from '@smithy/hash-node';
import { startMoto, type Moto, type MotoKeys } from '../harness/moto.ts';
import { createAwsLayer, type AwsLayer } from '../../core/aws/index.ts';
import type { GrantAuthenticator } from '../../core/plugin.ts';
import { ClusterResolver, describeCluster } from '../../plugins/eks/cluster.ts';
import { eksResourceSchema } from '../../plugins/eks/config.ts';

let moto: Moto;
let allowed: MotoKeys;
let refused: MotoKeys;
let createdEndpoint: string;
const layers: AwsLayer[] = [];

const resource = eksResourceSchema.parse({ type: 'eks', cluster: 'prod', region: 'us-east-1', access: { read: { verbs: ['get'], resources: ['pods'], namespaces: ['default'] } } });

function awsFor(keys: MotoKeys) {
  const layer = createAwsLayer({ region: 'us-east-1', endpoints: { eks: moto.endpoint, sts: moto.endpoint }, roles: new Map(), log: pino({ level: 'silent' }), credentials: async () => ({ accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey }) });
  layers.push(layer);
  return layer.forPlugin({} as GrantAuthenticator);
}

before(async () => {
  moto = await startMoto();
  const admin = moto.adminKeys();
  const url = new URL(`${moto.endpoint}/clusters`);
  const body = JSON.stringify({ name: 'prod', roleArn: `arn:aws:iam::${moto.accountId}:role/eks`, resourcesVpcConfig: { subnetIds: [] } });
  const signed = await new SignatureV4({ service: 'eks', region: 'us-east-1', credentials: admin, sha256: Hash.bind(null, 'sha256') }).sign(
    new HttpRequest({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, headers: { host: url.host, 'content-type': 'application/json' }, body }),
  );
  const res = await fetch(url, { method: 'POST', headers: signed.headers, body });
  const created = (await res.json()) as { cluster: { endpoint: string } };
  assert.equal(res.status, 200, JSON.stringify(created));
  createdEndpoint = created.cluster.endpoint;
  allowed = await moto.createUser('airlock-eks', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'eks:DescribeCluster', Resource: '*' }] });
  refused = await moto.createUser('airlock-nothing', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:ListBucket', Resource: '*' }] });
  await moto.enableAuth();
});

after(async () => {
  for (const l of layers) await l.close();
  await moto?.stop();
});

test('DescribeCluster signed with airlock identity returns the cluster endpoint', async () => {
  const found = await describeCluster(awsFor(allowed), 'prod', resource);
  assert.equal(found.endpoint, createdEndpoint);
  assert.ok(found.caData.length > 0);
});

test('without eks:DescribeCluster the lookup fails with the AWS error', async () => {
  await assert.rejects(describeCluster(awsFor(refused), 'prod', resource), (e: Error & { code?: string }) => e.code === 'UPSTREAM_FAILED' && /answered 403/.test(e.message));
});

test('an unknown cluster and a CA that is not a certificate fail closed', async () => {
  await assert.rejects(describeCluster(awsFor(allowed), 'prod', { ...resource, cluster: 'nope' }), /answered 404/);
  const resolver = new ClusterResolver('prod', resource, awsFor(allowed));
  await assert.rejects(resolver.target(), /certificateAuthority.data is not a PEM certificate/);
});
