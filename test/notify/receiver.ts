/** Loopback receivers for notification tests: a signed-webhook checker and a Slack stand-in. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  eventId: string;
  body: Record<string, unknown>;
  raw: string;
  signatureOk: boolean;
  signatureAgeS: number;
}

export interface Receiver {
  readonly url: string;
  readonly port: number;
  readonly deliveries: Delivery[];
  /** Stop accepting connections (the receiver is "down"). */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Verifies `x-airlock-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function verifySignature(secret: string, header: string | undefined, raw: string): { ok: boolean; ageS: number } {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return { ok: false, ageS: NaN };
  const expected = createHmac('sha256', secret).update(`${m[1]}.${raw}`).digest();
  const got = Buffer.from(m[2]!, 'hex');
  return { ok: got.length === expected.length && timingSafeEqual(got, expected), ageS: Math.abs(Date.now() / 1000 - Number(m[1])) };
}

export async function startReceiver(secret: string | undefined, port = 0): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  let server: Server | undefined;
  let boundPort = port;
  const listen = async () => {
    const s = createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (raw += d));
      req.on('end', () => {
        const sig = secret !== undefined ? verifySignature(secret, req.headers['x-airlock-signature'] as string | undefined, raw) : { ok: false, ageS: NaN };
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          // kept as {}: the test asserts on the body
        }
        deliveries.push({ eventId: String(req.headers['x-airlock-event-id'] ?? ''), body, raw, signatureOk: sig.ok, signatureAgeS: sig.ageS });
        res.writeHead(secret !== undefined && !sig.ok ? 401 : 200).end('ok');
      });
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(boundPort, '127.0.0.1', () => resolve());
    });
    boundPort = (s.address() as AddressInfo).port;
    server = s;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    await new Promise<void>((r) => {
      s.close(() => r());
      s.closeAllConnections();
    });
  };
  await listen();
  return {
    get url() {
      return `http://127.0.0.1:${boundPort}/hook`;
    },
    get port() {
      return boundPort;
    },
    deliveries,
    down: stop,
    up: listen,
    close: stop,
  };
}
