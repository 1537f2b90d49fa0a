/**
 * airlock's own SigV4 signer for the JSON protocol (core/aws/signing.ts `signDirect`),
 * held to @smithy/signature-v4 — the AWS SDK's signer — byte for byte on randomized
 * JSON-protocol requests, and to test vectors of AWS's SigV4 test suite (written out here
 * in our own form: the suite's credentials, date, region `us-east-1`, service `service`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Signer } from '../../core/aws/signing.ts';
import { EMPTY_SHA256, canonicalRequest, deriveSigningKey, sha256Hex, signatureHex, stringToSign } from '../../core/aws/sigv4.ts';
import { mulberry32 } from '../harness/prng.ts';

const SUITE = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  date: new Date(Date.UTC(2015, 7, 30, 12, 36, 0)),
  region: 'us-east-1',
  service: 'service',
};

/** AWS SigV4 test suite cases (host example.amazonaws.com, X-Amz-Date 20150830T123600Z, empty body). */
const VECTORS = [
  { name: 'get-vanilla', method: 'GET', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'post-vanilla', method: 'POST', signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b' },
];

describe('SigV4 arithmetic against the AWS test suite', () => {
  for (const v of VECTORS) {
    it(`${v.name}: the suite's signature`, () => {
      const names = ['host', 'x-amz-date'];
      const values = ['example.amazonaws.com', '20150830T123600Z'];
      const creq = canonicalRequest(v.method, '/', '', names, values, EMPTY_SHA256);
      const key = deriveSigningKey(SUITE.secretAccessKey, '20150830', SUITE.region, SUITE.service);
      assert.equal(signatureHex(key, stringToSign('20150830T123600Z', `20150830/${SUITE.region}/${SUITE.service}/aws4_request`, creq)), v.signature);
    });
    it(`${v.name}: smithy agrees (so the vector is read right)`, async () => {
      const smithy = new SignatureV4({ service: SUITE.service, region: SUITE.region, credentials: SUITE, sha256: Hash.bind(null, 'sha256'), applyChecksum: false });
      const req = new HttpRequest({ method: v.method, protocol: 'https:', hostname: 'example.amazonaws.com', path: '/', headers: { host: 'example.amazonaws.com' } });
      const signed = await smithy.sign(req, { signingDate: SUITE.date });
      assert.match(String(signed.headers['authorization']), new RegExp(`Signature=${v.signature}$`));
    });
  }
  it('hashes the empty payload to the well-known value', () => {
    assert.equal(sha256Hex(''), EMPTY_SHA256);
  });
});

describe('signDirect against @smithy/signature-v4', () => {
  const targets = ['DynamoDB_20120810.GetItem', 'DynamoDB_20120810.Query', 'AmazonSSM.SendCommand'];
  const bodies = ['', '{}', '{"TableName":"orders","Key":{"id":{"S":"1"}}}', '{"s":"é😀 \\n\\"x\\""}'];

  it('produces the same headers, signature included, on randomized JSON-protocol requests', async () => {
    const r = mulberry32(7);
    const signer = new Signer();
    for (let i = 0; i < 300; i++) {
      const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
      const credentials = {
        accessKeyId: pick(['AKIAAIRLOCK000000001', 'ASIAROLESESSION00001']),
        secretAccessKey: pick(['secret/one+key', 'another-secret-key-0123456789']),
        ...(r() < 0.5 ? { sessionToken: pick(['token-a', 'FwoGZXIvYXdzEB4aDH+/=']) } : {}),
      };
      const region = pick(['us-east-1', 'eu-west-1']);
      const service = pick(['dynamodb', 'ssm']);
      const headers: Record<string, string> = {
        'content-type': pick(['application/x-amz-json-1.0', 'application/x-amz-json-1.1']),
        'x-amz-target': pick(targets),
        host: pick(['127.0.0.1:8000', 'dynamodb.us-east-1.amazonaws.com']),
      };
      if (r() < 0.3) headers['User-Agent'] = 'agent/1.0';
      if (r() < 0.3) headers['X-Extra'] = '  spaced   value\t';
      if (r() < 0.2) headers['x-amz-date'] = '20000101T000000Z'; // replaced by signing
      const body = pick(bodies);
      const request = new HttpRequest({ method: 'POST', protocol: 'http:', hostname: 'h', path: pick(['/', '/base/path', '/a b/']), headers, body: r() < 0.2 ? Buffer.from(body) : body });
      const signingDate = new Date(Date.UTC(2026, 10, 1 + Math.floor(r() * 28), Math.floor(r() * 24), Math.floor(r() * 60), Math.floor(r() * 60), Math.floor(r() * 1000)));
      const smithy = new SignatureV4({ service, region, credentials, sha256: Hash.bind(null, 'sha256') });
      const expected = await smithy.sign(request, { signingDate });
      const got = signer.signDirect(request, { service, region, credentials, signingDate });
      assert.ok(got, 'the JSON-protocol request takes the direct path');
      assert.deepEqual(got.headers, expected.headers, `case ${i}`);
      assert.equal(got.body, request.body);
      assert.equal(got.path, request.path);
    }
  });

  it('leaves requests with a query string to smithy (and sign() still signs them)', async () => {
    const signer = new Signer();
    const request = new HttpRequest({ method: 'GET', protocol: 'https:', hostname: 'h', path: '/', query: { a: 'b' }, headers: { host: 'h' } });
    const opts = { service: 'sts', region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 's' } };
    assert.equal(signer.signDirect(request, opts), undefined);
    const signed = await signer.sign(request, opts);
    assert.match(String(signed.headers['authorization']), /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
  });
});
