/**
 * Typed errors with stable codes. Core raises them; each plugin maps a code to its own
 * wire error (a Postgres SQLSTATE, an AWS `__type`, a Kubernetes `Status` reason).
 * Messages are safe to show to the client: they never contain a secret.
 */
export const ErrorCodes = {
  /** The credential names no grant we know. */
  GRANT_UNKNOWN: 'GRANT_UNKNOWN',
  /** The grant exists but the proof (password, signature, bearer) is wrong. */
  BAD_CREDENTIAL: 'BAD_CREDENTIAL',
  GRANT_PENDING: 'GRANT_PENDING',
  GRANT_EXPIRED: 'GRANT_EXPIRED',
  GRANT_REVOKED: 'GRANT_REVOKED',
  GRANT_DENIED: 'GRANT_DENIED',
  /** The grant is for another resource or resource type. */
  WRONG_RESOURCE: 'WRONG_RESOURCE',
  /** The request reaches outside the grant's scope or access level. */
  OUT_OF_SCOPE: 'OUT_OF_SCOPE',
  /** The request could not be understood well enough to decide; denied (fail closed). */
  UNRESOLVABLE: 'UNRESOLVABLE',
  /** A SigV4 (or similar) signature does not verify. */
  SIGNATURE_MISMATCH: 'SIGNATURE_MISMATCH',
  /** A signed request is too old, too new, or for another region/service/date. */
  REQUEST_EXPIRED: 'REQUEST_EXPIRED',
  BAD_REQUEST: 'BAD_REQUEST',
  TOO_LARGE: 'TOO_LARGE',
  /** Too many failed attempts from this source. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The audit spool is full: new work fails closed rather than run unrecorded. */
  AUDIT_UNAVAILABLE: 'AUDIT_UNAVAILABLE',
  UPSTREAM_FAILED: 'UPSTREAM_FAILED',
  INTERNAL: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class AirlockError extends Error {
  override readonly name = 'AirlockError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isAirlockError(e: unknown, code?: ErrorCode): e is AirlockError {
  return e instanceof AirlockError && (code === undefined || e.code === code);
}
