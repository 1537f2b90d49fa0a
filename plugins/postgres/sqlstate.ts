/**
 * The one place where airlock's error codes become Postgres errors (SQLSTATE + message).
 * Authentication failures that would reveal whether a grant exists (unknown id, another
 * resource type) read exactly like a wrong password.
 */
import { isAirlockError, type ErrorCode } from '../../core/errors.ts';
import type { ErrorFields } from './wire/backend.ts';

const SQLSTATE: Record<ErrorCode, string> = {
  GRANT_UNKNOWN: '28P01',
  BAD_CREDENTIAL: '28P01',
  WRONG_RESOURCE: '28P01',
  GRANT_PENDING: '28000',
  GRANT_EXPIRED: '28000',
  GRANT_REVOKED: '28000',
  GRANT_DENIED: '28000',
  SIGNATURE_MISMATCH: '28000',
  REQUEST_EXPIRED: '28000',
  /** The only scope a Postgres grant has is its resource's database. */
  OUT_OF_SCOPE: '3D000',
  UNRESOLVABLE: '08P01',
  BAD_REQUEST: '08P01',
  TOO_LARGE: '08P01',
  RATE_LIMITED: '53300',
  AUDIT_UNAVAILABLE: '57P03',
  UPSTREAM_FAILED: '08006',
  INTERNAL: 'XX000',
  GRANT_NOT_FOUND: '28P01',
  GRANT_STATE: '28000',
  FORBIDDEN: '42501',
  BAD_IDENTITY: '28P01',
  /** too_many_connections: the grant's `maxSessions` live sessions are open. */
  SESSION_LIMIT: '53300',
  STORE_UNAVAILABLE: '57P03',
};

/** The FATAL ErrorResponse fields for an error ending a connection. `user` names the login for 28P01. */
export function fatalFor(e: unknown, user?: string): ErrorFields {
  if (!isAirlockError(e)) return { severity: 'FATAL', code: 'XX000', message: 'airlock: internal error' };
  const code = SQLSTATE[e.code];
  if (code === '28P01') return { severity: 'FATAL', code, message: `password authentication failed for user "${user ?? ''}"` };
  return { severity: 'FATAL', code, message: `airlock: ${e.message}` };
}

/** 57P01 admin_shutdown: what psql reports as "terminating connection". */
export function terminationFor(grantId: string, reason: string, message: string): ErrorFields {
  const why = reason === 'expired' || reason === 'revoked' ? `airlock grant ${grantId} ${reason}` : `airlock: ${message || reason}`;
  return { severity: 'FATAL', code: '57P01', message: `terminating connection: ${why}` };
}
