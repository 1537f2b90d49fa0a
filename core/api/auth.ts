/** Bearer JWT → identity for the control API; every failure is a 401 and an `auth.failed` record. */
import type { MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { IdentityVerifier, Identity } from '../identity/verifier.ts';
import { IdentityError } from '../identity/verifier.ts';
import type { Recorder } from '../audit/recorder.ts';
import type { FailureLimiter } from './rate-limit.ts';
import { ErrorCodes } from '../errors.ts';

export type ApiEnv = { Variables: { identity: Identity; source: string } };

export function sourceOf(c: Parameters<MiddlewareHandler>[0]): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function requireIdentity(verifier: IdentityVerifier, recorder: Recorder, limiter: FailureLimiter, onFailure: () => void): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const source = sourceOf(c);
    c.set('source', source);
    if (limiter.blocked(source)) {
      recorder.authFailed({ source, code: ErrorCodes.RATE_LIMITED, reason: 'too many failed authentications from this source' });
      return c.json({ error: 'too many failed authentications; try again later' }, 429, { 'retry-after': '60' });
    }
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const fail = (reason: string) => {
      limiter.fail(source);
      onFailure();
      recorder.authFailed({ source, code: ErrorCodes.BAD_IDENTITY, reason, data: { path: c.req.path } });
      return c.json({ error: `unauthorized: ${reason}` }, 401, { 'www-authenticate': 'Bearer realm="airlock"' });
    };
    if (!match) return fail('missing bearer token');
    try {
      c.set('identity', await verifier.verify(match[1]!));
    } catch (e) {
      if (e instanceof IdentityError) return fail(e.message);
      throw e;
    }
    await next();
  };
}
