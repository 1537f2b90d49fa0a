/**
 * The control API's one error model: every ErrorCode has its HTTP status here (the way
 * plugins/postgres/sqlstate.ts maps codes to SQLSTATEs), and one `onError` answers every
 * AirlockError a route throws as `{error, code, rule?}`.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { isAirlockError, type ErrorCode } from '../errors.ts';

export const HTTP_STATUS: Readonly<Record<ErrorCode, ContentfulStatusCode>> = {
  GRANT_UNKNOWN: 401,
  BAD_CREDENTIAL: 401,
  GRANT_PENDING: 403,
  GRANT_EXPIRED: 403,
  GRANT_REVOKED: 403,
  GRANT_DENIED: 403,
  WRONG_RESOURCE: 403,
  OUT_OF_SCOPE: 403,
  UNRESOLVABLE: 403,
  SIGNATURE_MISMATCH: 401,
  REQUEST_EXPIRED: 401,
  BAD_REQUEST: 400,
  TOO_LARGE: 413,
  RATE_LIMITED: 429,
  AUDIT_UNAVAILABLE: 503,
  UPSTREAM_FAILED: 502,
  INTERNAL: 500,
  GRANT_NOT_FOUND: 404,
  GRANT_STATE: 409,
  FORBIDDEN: 403,
  BAD_IDENTITY: 401,
  SESSION_LIMIT: 429,
  STORE_UNAVAILABLE: 503,
};

export function errorHandler(log: Logger): (err: Error, c: Context) => Response {
  return (err, c) => {
    if (isAirlockError(err)) {
      const status = HTTP_STATUS[err.code];
      if (status >= 500 && err.code !== 'AUDIT_UNAVAILABLE' && err.code !== 'STORE_UNAVAILABLE') log.error({ err }, 'control API error');
      return c.json({ error: err.message, code: err.code, ...(err.rule !== undefined ? { rule: err.rule } : {}) }, status, { 'cache-control': 'no-store' });
    }
    log.error({ err }, 'control API error');
    return c.json({ error: 'internal error', code: 'INTERNAL' }, 500);
  };
}
