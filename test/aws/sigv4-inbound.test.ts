/**
 * Inbound SigV4 verification against requests signed by the AWS SDK's own signer
 * (@smithy/signature-v4), for grant-issued keys held by a fake grant store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { isAirlockError } from '../../core/errors.ts';
import type { InboundAwsRequest } from '../../core/plugin.ts';
import { AwsWireError } from '../../core/aws/errors.ts';
import { canonicalPath, createInboundVerifier, uriEncode } from '../../core/aws/sigv4-inbound.ts';
import { canonicalHeaderValue } from '../../core/aws/sigv4.ts';
import { mulberry32 } from '../harness/prng.ts';
import { FakeGrants, makeGrant } from './fake-grants.ts';

const SECRET = 'grant-secret-0123456789abcdefghijklmnopqrs';
const GRANT_ID = 'AGAAAAAAAAAAAAAAAAAA';

function setup(opts: { now?: () => number; maxBodyBytes?: number } = {}) {
  const grants = new FakeGrants('dynamodb');
  grants.add(makeGrant({ id: GRANT_ID }), SECRET);
  const verify = createInboundVerifier({ grants, regionOf: () => 'us-east-1', now: opts.now, maxBodyBytes: opts.maxBodyBytes });
  return { grants, verify };
}

interface SignOptions {
  secret?: string;
  region?: string;
  service?: string;
  signingDate?: Date;
  path?: string;
  query?: Record<string, string>;
  body?: string;
  headers?: Record<string, string>;
  unsignableHeaders?: Set<string>;
}

async function signed(o: SignOptions = {}): Promise<InboundAwsRequest> {
  const body = o.body ?? '{"TableName":"orders","Key":{"id":{"S":"1"}}}';
  const request = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 8080,
    path: o.path ?? '/dynamodb/',
    query: o.query ?? {},
    headers: {
      host: '127.0.0.1:8080',
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'DynamoDB_20120810.GetItem',
      ...o.headers,
    },
    body,
  });
  const signer = new SignatureV4({
    service: o.service ?? 'dynamodb',
    region: o.region ?? 'us-east-1',
    sha256: Hash.bind(null, 'sha256'),
    credentials: { accessKeyId: GRANT_ID, secretAccessKey: o.secret ?? SECRET },
  });
  const out = await signer.sign(request, {
    ...(o.signingDate ? { signingDate: o.signingDate } : {}),
    ...(o.unsignableHeaders ? { unsignableHeaders: o.unsignableHeaders } : {}),
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(out.headers)) headers[k.toLowerCase()] = v;
  const query = Object.entries(o.query ?? {})
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
    .join('&');
  return { method: 'POST', path: out.path, query, headers, body: Buffer.from(body) };
}

async function rejects(promise: Promise<unknown>, code: string, awsType?: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isAirlockError(e), `expected AirlockError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (awsType) assert.equal((e as AwsWireError).awsType, awsType);
    return true;
  });
}

describe('inbound SigV4', () => {
  it('accepts a request the SDK signer signed with the grant key', async () => {
    const { verify } = setup();
    const out = await verify(await signed(), { service: 'dynamodb' });
    assert.equal(out.grant.id, GRANT_ID);
    assert.equal(out.region, 'us-east-1');
    assert.equal(out.service, 'dynamodb');
  });

  it('accepts odd paths and query strings encoded as the SDK encodes them', async () => {
    const { verify } = setup();
    const req = await signed({ path: '/base/a%20b/c%2Fd/', query: { 'x-id': 'a b/c', empty: '', 'ü': '~*' } });
    assert.equal((await verify(req, { service: 'dynamodb' })).grant.id, GRANT_ID);
  });

  it('rejects a wrong secret as InvalidSignatureException', async () => {
    const { verify } = setup();
    await rejects(verify(await signed({ secret: 'wrong' }), { service: 'dynamodb' }), 'SIGNATURE_MISMATCH', 'InvalidSignatureException');
  });

  it('rejects a tampered body', async () => {
    const { verify } = setup();
    const req = await signed();
    req.body = Buffer.from('{"TableName":"secrets","Key":{"id":{"S":"1"}}}');
    await rejects(verify(req, { service: 'dynamodb' }), 'SIGNATURE_MISMATCH');
  });

  it('rejects an x-amz-content-sha256 that does not match the body', async () => {
    const { verify } = setup();
    const req = await signed({ headers: { 'x-amz-content-sha256': '0'.repeat(64) } });
    await rejects(verify(req, { service: 'dynamodb' }), 'SIGNATURE_MISMATCH');
  });

  it('rejects a tampered signed header', async () => {
    const { verify } = setup();
    const req = await signed();
    req.headers['x-amz-target'] = 'DynamoDB_20120810.DeleteTable';
    await rejects(verify(req, { service: 'dynamodb' }), 'SIGNATURE_MISMATCH');
  });

  it('rejects an x-amz-* header that is not signed', async () => {
    const { verify } = setup();
    const req = await signed({ unsignableHeaders: new Set(['x-amz-target']) });
    await rejects(verify(req, { service: 'dynamodb' }), 'BAD_REQUEST', 'IncompleteSignatureException');
  });

  it('requires host to be signed', async () => {
    const { verify } = setup();
    const req = await signed({ unsignableHeaders: new Set(['host']) });
    await rejects(verify(req, { service: 'dynamodb' }), 'BAD_REQUEST', 'IncompleteSignatureException');
  });

  it('rejects an X-Amz-Date older or newer than 5 minutes', async () => {
    const { verify } = setup();
    const old = await signed({ signingDate: new Date(Date.now() - 6 * 60_000) });
    await rejects(verify(old, { service: 'dynamodb' }), 'REQUEST_EXPIRED', 'InvalidSignatureException');
    const future = await signed({ signingDate: new Date(Date.now() + 6 * 60_000) });
    await rejects(verify(future, { service: 'dynamodb' }), 'REQUEST_EXPIRED');
  });

  it('accepts a signature 4 minutes old', async () => {
    const { verify } = setup();
    const req = await signed({ signingDate: new Date(Date.now() - 4 * 60_000) });
    assert.equal((await verify(req, { service: 'dynamodb' })).grant.id, GRANT_ID);
  });

  it('rejects another region, even with a valid signature', async () => {
    const { verify } = setup();
    await rejects(verify(await signed({ region: 'eu-west-1' }), { service: 'dynamodb' }), 'REQUEST_EXPIRED', 'InvalidSignatureException');
  });

  it('rejects another service', async () => {
    const { verify } = setup();
    await rejects(verify(await signed({ service: 'ssm' }), { service: 'dynamodb' }), 'REQUEST_EXPIRED');
  });

  it('rejects an unknown access key', async () => {
    const { verify, grants } = setup();
    grants.grants.clear();
    await rejects(verify(await signed(), { service: 'dynamodb' }), 'GRANT_UNKNOWN');
  });

  it('rejects a grant of another resource type', async () => {
    const grants = new FakeGrants('ssm');
    grants.add(makeGrant({ id: GRANT_ID }), SECRET);
    const verify = createInboundVerifier({ grants, regionOf: () => 'us-east-1' });
    await rejects(verify(await signed(), { service: 'dynamodb' }), 'WRONG_RESOURCE');
  });

  it('rejects expired and revoked grants after the signature checks out', async () => {
    const { verify, grants } = setup();
    grants.setStatus(GRANT_ID, 'expired');
    await rejects(verify(await signed(), { service: 'dynamodb' }), 'GRANT_EXPIRED');
    grants.setStatus(GRANT_ID, 'revoked');
    await rejects(verify(await signed(), { service: 'dynamodb' }), 'GRANT_REVOKED');
  });

  it('rejects a missing or malformed Authorization header', async () => {
    const { verify } = setup();
    const req = await signed();
    delete req.headers['authorization'];
    await rejects(verify(req, { service: 'dynamodb' }), 'BAD_CREDENTIAL', 'MissingAuthenticationTokenException');
    req.headers['authorization'] = 'AWS4-HMAC-SHA256 Credential=x';
    await rejects(verify(req, { service: 'dynamodb' }), 'BAD_REQUEST', 'IncompleteSignatureException');
  });

  it('rejects a body over the limit before hashing it', async () => {
    const { verify } = setup({ maxBodyBytes: 16 });
    await rejects(verify(await signed(), { service: 'dynamodb' }), 'TOO_LARGE');
  });

  it('normalizes dot segments and keeps a trailing slash', () => {
    assert.equal(canonicalPath('/a/./b/../c/'), '/a/c/');
    assert.equal(canonicalPath('/'), '/');
    assert.equal(canonicalPath('/dynamodb'), '/dynamodb');
    assert.equal(canonicalPath('/a%20b'), '/a%2520b');
  });

  it('parses a remembered Authorization prefix the same way: a new signature is still checked', async () => {
    const { verify } = setup();
    const first = await signed();
    const second = await signed({ body: '{"TableName":"orders","Key":{"id":{"S":"2"}}}' });
    assert.equal((await verify(first, { service: 'dynamodb' })).grant.id, GRANT_ID);
    assert.equal((await verify(second, { service: 'dynamodb' })).grant.id, GRANT_ID);
    // The same Credential and SignedHeaders (a remembered prefix) with another request's signature.
    const swapped = { ...second, headers: { ...second.headers, authorization: first.headers['authorization']! } };
    await rejects(verify(swapped, { service: 'dynamodb' }), 'SIGNATURE_MISMATCH');
    // ...and with a signature that is not 64 lower-case hex digits.
    const auth = first.headers['authorization']!;
    const upper = { ...first, headers: { ...first.headers, authorization: auth.slice(0, -64) + auth.slice(-64).toUpperCase() } };
    await rejects(verify(upper, { service: 'dynamodb' }), 'BAD_REQUEST', 'IncompleteSignatureException');
  });

  it('canonicalises header values exactly as the general rule, fast path or not', () => {
    const general = (v: string) => v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim();
    const pieces = ['a', 'B', ' ', '  ', '\t', '\r\n', '\n', '\u00a0', '\v', '\u2028', '\ufeff', 'é', ';', '='];
    const next = mulberry32(7);
    for (let i = 0; i < 5000; i++) {
      let v = '';
      for (let k = Math.floor(next() * 6); k >= 0; k--) v += pieces[Math.floor(next() * pieces.length)];
      assert.equal(canonicalHeaderValue(v), general(v), JSON.stringify(v));
    }
  });
});
