/**
 * Browser-facing protections for every console response and state change: security
 * headers (a CSP without inline scripts), the session cookie's attributes, and the two
 * checks a state change must pass (Origin, then the form's CSRF token).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.header('content-security-policy', CSP);
    c.header('x-content-type-options', 'nosniff');
    c.header('x-frame-options', 'DENY');
    c.header('referrer-policy', 'same-origin');
    c.header('cross-origin-opener-policy', 'same-origin');
    if (!c.res.headers.has('cache-control')) c.header('cache-control', 'no-store');
  };
}

export interface CookieNames {
  session: string;
  /** Sign-in form's CSRF token, before there is a session. */
  pre: string;
  /** OIDC state across the round trip to the identity provider. */
  oidc: string;
  secure: boolean;
}

/** Over https the cookies are Secure and use the __Host- prefix (no Domain, Path=/). */
export function cookieNames(publicUrl: string): CookieNames {
  const secure = new URL(publicUrl).protocol === 'https:';
  const p = secure ? '__Host-' : '';
  return { session: `${p}airlock_console`, pre: `${p}airlock_console_pre`, oidc: `${p}airlock_console_oidc`, secure };
}

/** Why a state-changing request must be refused, or undefined when its Origin is ours. */
export function originProblem(c: Context, publicUrl: string): string | undefined {
  const expected = new URL(publicUrl).origin;
  const origin = c.req.header('origin');
  if (origin !== undefined) return origin === expected ? undefined : `cross-origin request from ${origin.slice(0, 200)}`;
  // No Origin (old browsers): accept only what the browser itself says is same-origin.
  return c.req.header('sec-fetch-site') === 'same-origin' ? undefined : 'request without an Origin header';
}

export function sameSecret(a: string | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
