/**
 * The gateway's HTTP(S) listener: one Node server for the control API and every HTTP
 * plugin, with a `ws` server attached so plugins can upgrade to WebSocket through
 * @hono/node-server's `upgradeWebSocket`.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { WebSocketServer } from 'ws';

type WebSocketServerLike = NonNullable<Parameters<typeof serve>[0]['websocket']>['server'];
import { parseListen, formatHostPort } from './listen.ts';

export interface HttpListener {
  readonly server: Server;
  readonly address: string;
  readonly url: string;
  close(): Promise<void>;
}

export async function startHttpListener(app: Hono, listen: string, tls: { key: string; cert: string } | undefined): Promise<HttpListener> {
  const { host, port } = parseListen(listen);
  const wss = new WebSocketServer({ noServer: true });
  const server = await new Promise<Server>((resolve, reject) => {
    const common = { fetch: app.fetch, hostname: host, port, websocket: { server: wss as unknown as WebSocketServerLike } };
    const options = tls
      ? { ...common, createServer: createHttpsServer, serverOptions: { key: tls.key, cert: tls.cert } }
      : { ...common, createServer: createHttpServer };
    const s = serve(options, () => resolve(s as Server)) as Server;
    s.once('error', reject);
  });
  // Idle keep-alive connections are cheap but not free; long enough for SDK pools.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const addr = server.address() as AddressInfo;
  const address = formatHostPort(addr.address, addr.port);
  return {
    server,
    address,
    url: `${tls ? 'https' : 'http'}://${address}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
