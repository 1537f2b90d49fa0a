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

/**
 * A header name as a proxy or server might fold it: lower case, `_` read as `-` (nginx and
 * some Go front ends accept either), so `Impersonate_User` is the impersonation header it
 * looks like.
 */
export function normalizedHeaderName(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/** Every header asking to act as someone else, with the identity it asks for. */
export function impersonationHeaders(headers: Headers): Array<{ header: string; value: string }> {
  const found: Array<{ header: string; value: string }> = [];
  headers.forEach((value, k) => {
    if (normalizedHeaderName(k).startsWith('impersonate-')) found.push({ header: k.toLowerCase(), value: value.slice(0, 1024) });
  });
  return found;
}

/** Headers to send upstream (the caller adds the EKS token). */
export function upstreamRequestHeaders(headers: Headers, opts: { websocket: boolean }): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    const k = key.toLowerCase();
    const n = normalizedHeaderName(k);
    if (HOP_BY_HOP.has(k) || IDENTITY.has(n) || IDENTITY_PREFIXES.some((p) => n.startsWith(p))) return;
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
