/**
 * The floor of airlock's own stack, as a reference: the least a Node process can do in
 * airlock's place, with none of airlock's work (no authentication of its own, no scope, no
 * audit, no signing). Comparing airlock with it separates what the runtime costs from what
 * airlock adds.
 *
 *   node --import tsx bench/floor-server.ts tcp  UPSTREAM_PORT   a TCP relay (socket.pipe both ways)
 *   node --import tsx bench/floor-server.ts http UPSTREAM_URL    Hono on @hono/node-server forwarding
 *                                                                each POST with undici, like airlock
 * Prints one JSON line `{ port, pid }` once listening; exits on SIGTERM or end of stdin. A
 * `gc` line on stdin (with --expose-gc) runs a full collection and answers
 * `{"gc":true,"memory":…}`, as bench/gateway-server.ts does, for idle-session memory.
 */
import { createServer, connect, type Server } from 'node:net';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { Agent } from 'undici';
import { createInterface } from 'node:readline';

const [mode, upstream] = process.argv.slice(2);

function ready(port: number): void {
  process.stdout.write(JSON.stringify({ port, pid: process.pid }) + '\n');
}

let close: () => void = () => process.exit(0);
if (mode === 'tcp' && upstream) {
  const server: Server = createServer({ noDelay: true }, (client) => {
    const up = connect({ port: Number(upstream), host: '127.0.0.1', noDelay: true });
    client.pipe(up);
    up.pipe(client);
    const drop = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
  });
  server.listen(0, '127.0.0.1', () => ready((server.address() as { port: number }).port));
  close = () => server.close(() => process.exit(0));
} else if (mode === 'http' && upstream) {
  const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000 });
  const upstreamUrl = new URL(upstream);
  const upstreamPath = upstreamUrl.pathname + upstreamUrl.search;
  const app = new Hono();
  app.post('*', async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    // As airlock's AwsUpstream calls it: the dispatcher's own request({ origin, path }).
    const res = await agent.request({
      origin: upstreamUrl.origin,
      path: upstreamPath,
      method: 'POST',
      headers: { 'content-type': c.req.header('content-type') ?? 'application/x-amz-json-1.0', 'x-amz-target': c.req.header('x-amz-target') ?? '' },
      body,
    });
    const out = Buffer.from(await res.body.arrayBuffer());
    const type = res.headers['content-type'];
    return new Response(out, { status: res.statusCode, headers: { 'content-type': typeof type === 'string' ? type : 'application/x-amz-json-1.0' } });
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => ready(info.port));
  close = () => server.close(() => process.exit(0));
} else {
  process.stderr.write('usage: floor-server.ts tcp UPSTREAM_PORT | http UPSTREAM_URL\n');
  process.exit(2);
}
process.once('SIGTERM', () => close());
process.stdin.on('end', () => close());
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'gc') return;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  process.stdout.write(JSON.stringify({ gc: gc !== undefined, memory: process.memoryUsage() }) + '\n');
});
