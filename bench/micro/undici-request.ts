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

const ROUNDS = 8;
const CALLS = 20_000;
const IN_FLIGHT = 8;

const responder = await startResponder(requireTools(['http']).nginx!);
const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000 });
const url = new URL(`${responder.url}/`);
const body = '{"TableName":"orders","Key":{"id":{"S":"o-1001"}}}';
// The headers a signed GetItem carries upstream (the signature's value does not matter here).
const headers = {
  'content-type': 'application/x-amz-json-1.0',
  'x-amz-target': 'DynamoDB_20120810.GetItem',
  'x-amz-date': '20261203T120000Z',
  authorization: `AWS4-HMAC-SHA256 Credential=AKIA/20261203/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=${'0'.repeat(64)}`,
};

async function viaUrl(): Promise<void> {
  const res = await request(url.href, { dispatcher: agent, method: 'POST', headers, body });
  await res.body.arrayBuffer();
}

async function viaOrigin(): Promise<void> {
  const res = await agent.request({ origin: url.origin, path: url.pathname, method: 'POST', headers, body });
  await res.body.arrayBuffer();
}

/** CPU µs per call, `IN_FLIGHT` at a time. */
async function measure(call: () => Promise<void>, n: number): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i += IN_FLIGHT) await Promise.all(Array.from({ length: IN_FLIGHT }, call));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  await measure(viaUrl, 4000); // warm-up, both
  await measure(viaOrigin, 4000);
  const byUrl: number[] = [];
  const byOrigin: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    byUrl.push(await measure(viaUrl, CALLS));
    byOrigin.push(await measure(viaOrigin, CALLS));
  }
  const rounds = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(',');
  process.stdout.write(
    `request(url): ${median(byUrl).toFixed(1)} µs, agent.request({ origin, path }): ${median(byOrigin).toFixed(1)} µs CPU per call (client side); ` +
      `rounds ${rounds(byUrl)} | ${rounds(byOrigin)}\n`,
  );
} finally {
  await agent.close();
  await responder.stop();
}
