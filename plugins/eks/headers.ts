/**
 * Which headers cross airlock. Identity travels only as airlock's own EKS token: the
 * agent's bearer, cookies and any header an API server or authenticating proxy reads as
 * identity (X-Remote-*, Impersonate-*) never reach the cluster. Impersonate-* is refused
 * outright before we get here (a request asking to act as someone else is a violation,
 * not something to quietly repair).
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1) and ones the HTTP client sets itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length', 'expect', 'http2-settings']);

/** Headers that carry or assert identity. */
const IDENTITY = new Set(['authorization', 'proxy-authorization', 'cookie', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'x-client-ip']);
const IDENTITY_PREFIXES = ['impersonate-', 'x-remote-', 'x-forwarded-'];

/** WebSocket handshake headers: the relay's own client makes its own handshake. */
const WEBSOCKET_HANDSHAKE = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'sec-websocket-accept']);

export function impersonationHeaders(headers: Headers): string[] {
  const found: string[] = [];
  headers.forEach((_v, k) => {
    if (k.toLowerCase().startsWith('impersonate-')) found.push(k.toLowerCase());
  });
  return found;
}

/** Headers to send upstream (the caller adds the EKS token). */
export function upstreamRequestHeaders(headers: Headers, opts: { websocket: boolean }): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    const k = key.toLowerCase();
    if (HOP_BY_HOP.has(k) || IDENTITY.has(k) || IDENTITY_PREFIXES.some((p) => k.startsWith(p))) return;
    if (opts.websocket && WEBSOCKET_HANDSHAKE.has(k)) return;
    out[k] = value;
  });
  return out;
}

/** Upstream response headers to pass back to the client. */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): Headers {
  const out = new Headers();
  for (const [key, value] of Object.entries(headers)) {
    const k = key.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(k) || k === 'set-cookie' || k === 'www-authenticate') continue;
    if (Array.isArray(value)) for (const v of value) out.append(k, v);
    else out.set(k, value);
  }
  return out;
}
