/**
 * exec / attach / port-forward over WebSocket: connect to the cluster first (with airlock's
 * EKS token and the client's offered subprotocols), and only when the cluster has accepted
 * complete the client's handshake with the SAME subprotocol; then relay frames both ways
 * through recorded pumps. If the cluster refuses, the client gets the cluster's answer.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { upgradeWebSocket } from '@hono/node-server';
import WebSocket from 'ws';
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { CloseReason, Session } from '../../core/plugin.ts';
import { ExecCapture, isChannelProtocol, statusFrame, type Frame } from './exec-capture.ts';
import { RecordedPump } from './pump.ts';

const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
const MAX_FRAME = 32 * 1024 * 1024;

export interface UpstreamHandshake {
  url: string;
  headers: Record<string, string>;
  caPem: string;
  protocols: string[];
}

/**
 * The cluster leg, with whatever it said before the client leg was ready: the cluster may
 * answer (`echo hi`) and close before the client's handshake completes, and ws drops
 * messages nobody listens to.
 */
export class UpstreamLeg {
  readonly early: Array<{ data: Buffer; binary: boolean }> = [];
  closed: { code: number; reason: Buffer } | undefined;
  private onMessage: ((data: Buffer, binary: boolean) => void) | undefined;
  private onClose: ((code: number, reason: Buffer) => void) | undefined;

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer, binary: boolean) => (this.onMessage ? this.onMessage(data, binary) : this.early.push({ data, binary })));
    socket.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason };
      this.onClose?.(code, reason);
    });
    socket.on('error', () => {
      // 'close' follows; the relay decides what the client hears.
    });
  }

  /** Take over: buffered messages first, then live ones; a close already seen is replayed. */
  attach(onMessage: (data: Buffer, binary: boolean) => void, onClose: (code: number, reason: Buffer) => void): void {
    for (const m of this.early.splice(0)) onMessage(m.data, m.binary);
    this.onMessage = onMessage;
    this.onClose = onClose;
    if (this.closed) onClose(this.closed.code, this.closed.reason);
  }
}

export type UpstreamResult =
  | { ok: true; leg: UpstreamLeg; protocol: string }
  | { ok: false; status: number; headers: Record<string, string>; body: string };

/** Open the upstream WebSocket; a non-101 answer comes back as a plain response. */
export function connectUpstream(h: UpstreamHandshake): Promise<UpstreamResult> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(h.url, h.protocols, {
      ca: h.caPem,
      rejectUnauthorized: true,
      headers: h.headers,
      perMessageDeflate: false,
      handshakeTimeout: 15_000,
      maxPayload: MAX_FRAME,
      followRedirects: false,
    });
    const leg = new UpstreamLeg(socket);
    socket.once('open', () => resolve({ ok: true, leg, protocol: socket.protocol }));
    socket.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < 64 * 1024) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => {
        const headers: Record<string, string> = {};
        const ct = res.headers['content-type'];
        if (typeof ct === 'string') headers['content-type'] = ct;
        resolve({ ok: false, status: res.statusCode ?? 502, headers, body: Buffer.concat(chunks).toString('utf8') });
        socket.terminate();
      });
      res.on('error', reject);
    });
    socket.once('error', (e: Error) => reject(new AirlockError(ErrorCodes.UPSTREAM_FAILED, `cluster WebSocket: ${e.message}`, { cause: e })));
  });
}

/** Narrow the client's offered subprotocols to one: the gateway's ws server takes the first offered. */
function offerOnly(c: Context, protocol: string): void {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming) return;
  if (protocol) incoming.headers['sec-websocket-protocol'] = protocol;
  else delete incoming.headers['sec-websocket-protocol'];
}

/**
 * Refuse an exec/attach over the channel protocol itself: accept the handshake, send the
 * Status on the error channel, close. kubectl then prints our reason; a plain 403 would
 * make it fall back to SPDY and report that instead. Undefined when the client offers no
 * channel protocol (the caller answers with plain HTTP).
 */
export function refuseOverWebSocket(c: Context, offered: readonly string[], status: { message: string; reason: string; code: number }): Promise<Response> | undefined {
  const protocol = offered.find(isChannelProtocol);
  if (!protocol) return undefined;
  offerOnly(c, protocol);
  return upgradeWebSocket(
    c,
    {
      onOpen: (_evt, ws) => {
        const frame = statusFrame(protocol, status);
        (ws.raw as unknown as ClientSocket).send(frame, { binary: typeof frame !== 'string' });
        ws.close(1000, status.reason);
      },
    },
    { onError: () => {} },
  );
}

/** Minimal view of the client-side `ws` socket under @hono/node-server's WSContext. */
interface ClientSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  pause(): void;
  resume(): void;
  send(data: Buffer | string, opts: { binary: boolean }): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

const waitUntil = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
};

export interface RelayOptions {
  c: Context;
  upstream: UpstreamLeg;
  protocol: string;
  /** Its closer (expiry / revocation / shutdown) is attached with `attachCloser`. */
  session: Session<unknown>;
}

/**
 * Complete the client's handshake and relay. Before calling, the client's offered
 * subprotocols are narrowed to the one the cluster chose (the gateway's ws server takes the
 * first offered), so both legs speak the same protocol.
 */
export async function relayToClient(opts: RelayOptions): Promise<Response> {
  const { c, protocol, session } = opts;
  const leg = opts.upstream;
  const upstream = leg.socket;
  offerOnly(c, protocol);

  const capture = new ExecCapture(protocol);
  const early: Frame[] = [];
  let client: ClientSocket | undefined;
  let finished = false;
  let toClient: RecordedPump | undefined;

  const finish = (reason: CloseReason, data?: Record<string, unknown>): void => {
    if (finished) return;
    finished = true;
    session.end(reason, { ...capture.summary(), ...data });
  };

  // Cluster -> client: stdout/stderr/status, released once recorded (durable).
  const startToClient = (sock: ClientSocket): RecordedPump =>
    new RecordedPump({
      record: (batch) => {
        const content = capture.take(batch);
        return content ? session.record('k8s.exec.io', { direction: 'out', ...content }, 'ok').durable : undefined;
      },
      deliver: (f) => {
        if (sock.readyState === WebSocket.OPEN) sock.send(f.data, { binary: f.binary });
      },
      writable: async () => {
        if (sock.bufferedAmount > HIGH_WATER) await waitUntil(() => sock.bufferedAmount < LOW_WATER || sock.readyState !== WebSocket.OPEN);
        if (toClient && toClient.pending < LOW_WATER && upstream.isPaused) upstream.resume();
      },
      fail: () => {
        sock.close(1011, 'audit unavailable');
        upstream.terminate();
        finish('error', { error: 'audit unavailable' });
      },
    });

  // Client -> cluster: stdin (and resize), forwarded once spooled.
  const toUpstream = new RecordedPump({
    record: (batch) => {
      const content = capture.take(batch);
      return content ? session.record('k8s.exec.io', { direction: 'in', ...content }, 'ok').spooled : undefined;
    },
    deliver: (f) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(f.data, { binary: f.binary });
    },
    writable: async () => {
      if (upstream.bufferedAmount > HIGH_WATER) await waitUntil(() => upstream.bufferedAmount < LOW_WATER || upstream.readyState !== WebSocket.OPEN);
      if (client && toUpstream.pending < LOW_WATER) client.resume();
    },
    fail: () => {
      client?.close(1011, 'audit unavailable');
      upstream.terminate();
      finish('error', { error: 'audit unavailable' });
    },
  });

  let upstreamClosed: { code: number; reason: Buffer } | undefined;
  const closeClientAfterUpstream = async (): Promise<void> => {
    if (!upstreamClosed || !client || !toClient) return;
    await toClient.idle();
    const { code, reason } = upstreamClosed;
    if (client.readyState === WebSocket.OPEN) {
      try {
        client.close(code === 1005 || code === 1006 ? 1000 : code, reason.toString());
      } catch {
        client.close(1000); // a close code we may not send (1015 and other reserved codes)
      }
    }
    finish('client', { endedBy: 'cluster', code });
  };
  leg.attach(
    (data, isBinary) => {
      const frame = { data, binary: isBinary };
      if (!toClient) return void early.push(frame);
      toClient.push(frame);
      if (toClient.pending > HIGH_WATER) upstream.pause();
    },
    (code, reason) => {
      upstreamClosed = { code, reason };
      void closeClientAfterUpstream();
    },
  );

  session.attachCloser((reason, message) => {
    // Tell kubectl why on the error channel, then cut both legs.
    if (client && client.readyState === WebSocket.OPEN) {
      if (isChannelProtocol(protocol)) {
        const frame = statusFrame(protocol, { message: message.startsWith('airlock') ? message : `airlock: ${message}`, reason: reason === 'shutdown' ? 'ServiceUnavailable' : 'Unauthorized', code: reason === 'shutdown' ? 503 : 401 });
        client.send(frame, { binary: typeof frame !== 'string' });
      }
      client.close(1000, message.slice(0, 120));
    }
    toClient?.stop();
    toUpstream.stop();
    upstream.terminate();
    finished = true; // the core records session.closed with its own reason
  });

  // The client may vanish between our answer and its handshake: never leave the cluster leg open.
  const handshakeTimer = setTimeout(() => {
    if (client) return;
    upstream.terminate();
    finish('error', { error: 'client did not complete the WebSocket handshake' });
  }, 15_000);
  handshakeTimer.unref();

  return upgradeWebSocket(
    c,
    {
      onOpen: (_evt, ws) => {
        clearTimeout(handshakeTimer);
        client = ws.raw as unknown as ClientSocket;
        toClient = startToClient(client);
        for (const f of early.splice(0)) toClient.push(f);
        void closeClientAfterUpstream();
      },
      onMessage: (evt) => {
        const d = evt.data as unknown;
        const frame: Frame = typeof d === 'string' ? { data: Buffer.from(d, 'utf8'), binary: false } : { data: Buffer.from(d as ArrayBuffer), binary: true };
        toUpstream.push(frame);
        if (client && toUpstream.pending > HIGH_WATER) client.pause();
      },
      onClose: () => {
        void toUpstream.idle().then(() => {
          if (upstream.readyState === WebSocket.OPEN) upstream.close(1000);
          else upstream.terminate();
          finish('client', { endedBy: 'client' });
        });
      },
      onError: () => {
        upstream.terminate();
        finish('error', { error: 'client connection failed' });
      },
    },
    { onError: () => {} },
  );
}
