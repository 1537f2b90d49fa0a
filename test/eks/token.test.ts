/**
 * EKS token: what airlock signs is accepted by an aws-iam-authenticator-style check (the
 * stand-in's verifier), and tokens for another cluster, with another key, tampered or too
 * old are not. The cache reuses a token for 10 minutes and signs a new one after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EksTokenCache, makeEksToken, TOKEN_PREFIX } from '../../plugins/eks/token.ts';
import { verifyEksToken } from '../stand-ins/eks-api-server.ts';
import { fakeAws } from './fake-aws.ts';

const keys = { accessKeyId: 'AKIATESTEKS000000001', secretAccessKey: 'test-secret-key-for-eks-stand-in-000000' };
const aws = fakeAws(keys);

test('a fresh token verifies for its cluster and has the authenticator shape', async () => {
  const token = await makeEksToken(aws, { cluster: 'prod', region: 'us-east-1', credentials: keys });
  assert.ok(token.startsWith(TOKEN_PREFIX));
  assert.doesNotMatch(token, /=/, 'no base64 padding');
  const url = new URL(Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString());
  assert.equal(url.host, 'sts.us-east-1.amazonaws.com');
  assert.equal(url.searchParams.get('Action'), 'GetCallerIdentity');
  assert.equal(url.searchParams.get('X-Amz-Expires'), '60');
  assert.match(url.searchParams.get('X-Amz-SignedHeaders') ?? '', /(^|;)x-k8s-aws-id(;|$)/);
  const ok = verifyEksToken(token, { cluster: 'prod', keys });
  assert.equal(ok.accessKeyId, keys.accessKeyId);
});

test('a token is refused for another cluster, with another secret, or tampered', async () => {
  const token = await makeEksToken(aws, { cluster: 'prod', region: 'us-east-1', credentials: keys });
  assert.throws(() => verifyEksToken(token, { cluster: 'staging', keys }), /SignatureDoesNotMatch/);
  assert.throws(() => verifyEksToken(token, { cluster: 'prod', keys: { ...keys, secretAccessKey: 'another-secret' } }), /SignatureDoesNotMatch/);
  const url = Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString();
  const retarget = (u: string): string => TOKEN_PREFIX + Buffer.from(u).toString('base64url');
  assert.throws(() => verifyEksToken(retarget(url.replace('sts.us-east-1.amazonaws.com', 'evil.example.com')), { cluster: 'prod', keys }), /unexpected hostname/);
  assert.throws(() => verifyEksToken(retarget(url.replace('Action=GetCallerIdentity', 'Action=AssumeRole')), { cluster: 'prod', keys }), /action/);
  assert.throws(() => verifyEksToken(retarget(`${url}&X-Extra=1`), { cluster: 'prod', keys }), /non-whitelisted/);
  assert.throws(() => verifyEksToken(`${token}==`, { cluster: 'prod', keys }), /base64url/);
  assert.throws(() => verifyEksToken(token.replace(TOKEN_PREFIX, 'k8s-aws-v2.'), { cluster: 'prod', keys }), /prefix/);
});

test('a token older than 15 minutes is refused; the cache replaces it after 10', async () => {
  let now = Date.parse('2026-03-01T12:00:00Z');
  const cache = new EksTokenCache(aws, () => now);
  const first = await cache.token('prod', 'us-east-1', keys);
  assert.equal(await cache.token('prod', 'us-east-1', keys), first, 'reused within 10 minutes');
  now += 9 * 60_000;
  assert.equal(await cache.token('prod', 'us-east-1', keys), first);
  verifyEksToken(first, { cluster: 'prod', keys, now: () => now });
  now += 2 * 60_000; // 11 minutes: replaced
  const second = await cache.token('prod', 'us-east-1', keys);
  assert.notEqual(second, first);
  now += 5 * 60_000; // the first is now 16 minutes old
  assert.throws(() => verifyEksToken(first, { cluster: 'prod', keys, now: () => now }), /expired/);
  verifyEksToken(second, { cluster: 'prod', keys, now: () => now });
});

test('concurrent requests share one signing; other clusters get their own token', async () => {
  let signings = 0;
  const counting = { presign: async (...args: Parameters<typeof aws.presign>) => (signings++, aws.presign(...args)) };
  const cache = new EksTokenCache(counting);
  const tokens = await Promise.all(Array.from({ length: 20 }, () => cache.token('prod', 'us-east-1', keys)));
  assert.equal(new Set(tokens).size, 1);
  assert.equal(signings, 1);
  const other = await cache.token('staging', 'us-east-1', keys);
  assert.notEqual(other, tokens[0]);
  verifyEksToken(other, { cluster: 'staging', keys });
});

/** Only the test key pair: no profile, session token or config file may leak in. */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v;
  return { ...env, AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
}

test('the stand-in verifier accepts a token made by `aws eks get-token` (the reference client)', async () => {
  const { execFile } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      'aws',
      ['eks', 'get-token', '--cluster-name', 'prod', '--region', 'us-east-1'],
      { env: cliEnv(), timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`aws eks get-token failed: ${stderr || err.message}`)) : resolve(stdout)),
    );
  });
  const token = (JSON.parse(out) as { status: { token: string } }).status.token;
  assert.equal(verifyEksToken(token, { cluster: 'prod', keys }).accessKeyId, keys.accessKeyId);
  assert.throws(() => verifyEksToken(token, { cluster: 'other', keys }), /SignatureDoesNotMatch/);
});
