/**
 * CPU per outbound signature of a DynamoDB GetItem: smithy's SignatureV4 (what airlock used)
 * against airlock's direct JSON-protocol signer, alternating, same request and credentials.
 *
 *   node --import tsx bench/micro/sigv4-sign.ts [requests]
 */
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Signer } from '../../core/aws/signing.ts';

const n = Number(process.argv[2] ?? 20000);
const credentials = { accessKeyId: 'AKIAAIRLOCKBENCH0001', secretAccessKey: 'bench-secret-not-a-real-key' };
const body = JSON.stringify({ TableName: 'orders', Key: { id: { S: 'order-0042' } } });
const request = () => new HttpRequest({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 8000, path: '/', headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem', host: '127.0.0.1:8000' }, body });
const smithy = new SignatureV4({ service: 'dynamodb', region: 'us-east-1', credentials, sha256: Hash.bind(null, 'sha256') });
const direct = new Signer();

async function measure(label: string, sign: () => Promise<unknown> | unknown): Promise<void> {
  for (let i = 0; i < 2000; i++) await sign();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await sign();
  const c = process.cpuUsage(c0);
  process.stdout.write(`${label}: ${(((c.user + c.system) / n)).toFixed(2)} µs CPU per signature\n`);
}
for (let round = 0; round < 3; round++) {
  await measure('smithy SignatureV4', () => smithy.sign(request()));
  await measure('airlock signDirect ', () => direct.signDirect(request(), { service: 'dynamodb', region: 'us-east-1', credentials }));
}
