/**
 * Pre-signed DynamoDB GetItem requests, so the load generator (wrk, which cannot compute
 * SigV4 per request) sends exactly what an SDK would: signed with the grant's key, Host
 * included in the signature. A pool of distinct keys is cycled; airlock accepts a signed
 * request again within its 5-minute window, so the pool is signed just before each run.
 */
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export interface SignedRequest {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

export interface PresignOptions {
  /** Full URL of the endpoint, e.g. http://127.0.0.1:8080/dynamodb */
  url: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  table: string;
  count: number;
}

export async function presignGetItems(o: PresignOptions): Promise<SignedRequest[]> {
  const url = new URL(o.url);
  const signer = new SignatureV4({
    service: 'dynamodb',
    region: o.region,
    credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey },
    sha256: Hash.bind(null, 'sha256'),
  });
  const out: SignedRequest[] = [];
  for (let i = 0; i < o.count; i++) {
    const body = JSON.stringify({ TableName: o.table, Key: { id: { S: `o-${1000 + i}` } } });
    const request = new HttpRequest({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      headers: {
        host: url.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.GetItem',
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    const signed = await signer.sign(request);
    out.push({ url: o.url, method: 'POST', headers: { ...signed.headers }, body });
  }
  return out;
}

/** The request as raw HTTP/1.1 text (host first, the rest as signed). */
export function rawHttp(r: SignedRequest): string {
  const url = new URL(r.url);
  const lines = [`POST ${url.pathname} HTTP/1.1`, `host: ${r.headers['host'] ?? url.host}`];
  for (const [name, value] of Object.entries(r.headers)) if (name !== 'host') lines.push(`${name}: ${value}`);
  return lines.join('\r\n') + '\r\n\r\n' + r.body;
}

function luaString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r/g, '\\r').replace(/\n/g, '\\n') + '"';
}

/** A wrk script that cycles through the pre-signed requests. */
export function wrkScript(requests: readonly SignedRequest[]): string {
  return [
    'local requests = {',
    ...requests.map((r) => `  ${luaString(rawHttp(r))},`),
    '}',
    'local n = #requests',
    'local i = 0',
    'request = function()',
    '  i = i % n + 1',
    '  return requests[i]',
    'end',
    '',
  ].join('\n');
}

/** Send one pre-signed request with fetch and return status and body, to check a target answers right. */
export async function sendOnce(r: SignedRequest): Promise<{ status: number; body: string }> {
  const headers = { ...r.headers };
  // fetch sets these itself.
  delete headers['host'];
  delete headers['content-length'];
  const res = await fetch(r.url, { method: 'POST', headers, body: r.body });
  return { status: res.status, body: await res.text() };
}
