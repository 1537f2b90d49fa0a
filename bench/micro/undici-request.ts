/**
 * CPU per upstream call on the client side, undici 7: the top-level `request(url, { dispatcher })`
 * (what airlock and the Node floor used before) against the dispatcher's own
 * `agent.request({ origin, path })` (what both use now), alternating, against the nginx
 * responder the HTTP part uses, eight calls in flight.
 *
 *   node --import tsx bench/micro/undici-request.ts
 */
import { Agent, request } from 'undici';
import { startResponder } from '../http/nginx.ts';
import { requireTools } from '../lib/tools.ts';

const responder = await startResponder(requireTools(['http']).nginx!);
const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000 });
const url = `${responder.url}/`;
const u = new URL(url);
const body = '{"TableName":"orders","Key":{"id":{"S":"o-1001"}}}';
const headers = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem', 'x-amz-date': '20261203T120000Z', authorization: 'AWS4-HMAC-SHA256 Credential=AKIA/20261203/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=' + '0'.repeat(64) };
const viaUrl = async () => { const r = await request(url, { dispatcher: agent, method: 'POST', headers, body }); await r.body.arrayBuffer(); };
const viaOrigin = async () => { const r = await agent.request({ origin: u.origin, path: '/', method: 'POST', headers, body }); await r.body.arrayBuffer(); };
async function measure(f: () => Promise<void>, n: number) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i += 8) await Promise.all([f(), f(), f(), f(), f(), f(), f(), f()]);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}
try {
  await measure(viaUrl, 4000); await measure(viaOrigin, 4000);
  const a: number[] = [], b: number[] = [];
  for (let r = 0; r < 8; r++) { a.push(await measure(viaUrl, 20000)); b.push(await measure(viaOrigin, 20000)); }
  const med = (x: number[]) => x.slice().sort((p, q) => p - q)[4]!.toFixed(1);
  console.log(`request(url): ${med(a)} us  agent.request({origin, path}): ${med(b)} us CPU per call (client side)`, a.map((x) => x.toFixed(0)).join(','), '|', b.map((x) => x.toFixed(0)).join(','));
} finally { await agent.close(); await responder.stop(); }
