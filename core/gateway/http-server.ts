/**
 * The gateway's HTTP(S) listener: one Node server for the control API and every HTTP
 * plugin, with a `ws` server attached so plugins can upgrade to WebSocket through
 * @hono/node-server's `upgradeWebSocket`.
 */
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
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

/** What answers requests: the hub's app once it is assembled (503 before). */
export type FetchHandler = Pick<Hono, 'fetch'>;

export async function startHttpListener(app: FetchHandler, listen: string, tls: { key: string; cert: string } | undefined): Promise<HttpListener> {
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
  answerNonWebSocketUpgrades(server, app, Boolean(tls));
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

/**
 * @hono/node-server handles WebSocket upgrades and ignores every other kind, which would
 * leave e.g. kubectl's SPDY fallback hanging. Keep its listener for WebSocket and answer any
 * other upgrade through the app as an ordinary request (the plugin explains the refusal),
 * then close the connection.
 */
function answerNonWebSocketUpgrades(server: Server, app: FetchHandler, tls: boolean): void {
  const [wsUpgrade] = server.listeners('upgrade') as Array<(req: IncomingMessage, socket: Duplex, head: Buffer) => void>;
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (wsUpgrade && req.headers.upgrade?.toLowerCase() === 'websocket') return wsUpgrade(req, socket, head);
    void (async () => {
      const url = new URL(req.url ?? '/', `${tls ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const res = await app.fetch(new Request(url, { method: req.method ?? 'GET', headers }), { incoming: req });
      const body = Buffer.from(await res.arrayBuffer());
      const lines = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status] ?? ''}`, 'Connection: close', `Content-Length: ${body.length}`];
      res.headers.forEach((v, k) => {
        if (!['connection', 'content-length', 'transfer-encoding', 'upgrade'].includes(k)) lines.push(`${k}: ${v}`);
      });
      socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]));
    })().catch(() => socket.destroy());
  });
}
