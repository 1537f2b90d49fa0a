/**
 * Bearer JWT → identity for the control API; every failure is a 401 (429 once its address
 * is past the failure budget) and an `auth.failed` record. A token that verifies always
 * passes, whatever else came from its address.
 */
import type { MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { IdentityVerifier, Identity } from '../identity/verifier.ts';
import { IdentityError } from '../identity/verifier.ts';
import type { Recorder } from '../audit/recorder.ts';
import { ErrorCodes } from '../errors.ts';

export type ApiEnv = { Variables: { identity: Identity; source: string } };

export function sourceOf(c: Parameters<MiddlewareHandler>[0]): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function requireIdentity(verifier: IdentityVerifier, recorder: Recorder, onFailure: () => void): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const source = sourceOf(c);
    c.set('source', source);
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const fail = (reason: string) => {
      onFailure();
      const { limited } = recorder.authRefused({ source, code: ErrorCodes.BAD_IDENTITY, reason, data: { path: c.req.path } });
      if (limited) return c.json({ error: 'too many failed authentications from this address; try again later' }, 429, { 'retry-after': '60' });
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
