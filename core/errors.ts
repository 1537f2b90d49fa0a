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
  // ---- control plane (the HTTP status of each is in core/api/status.ts) ----
  /** A control action names a grant that does not exist (or that the caller may not see). */
  GRANT_NOT_FOUND: 'GRANT_NOT_FOUND',
  /** The grant is in the wrong state for the action (approve a non-pending grant...). */
  GRANT_STATE: 'GRANT_STATE',
  /** The identity may not do this (not an admin, four eyes, a policy said no). */
  FORBIDDEN: 'FORBIDDEN',
  /** A control-API identity token is missing or does not verify. */
  BAD_IDENTITY: 'BAD_IDENTITY',
  /** The grant already has `policies[].maxSessions` live sessions (Postgres: 53300). */
  SESSION_LIMIT: 'SESSION_LIMIT',
  /** The grant store cannot be reached: new grants and sessions are refused (503). */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export const ERROR_CODES: readonly ErrorCode[] = Object.values(ErrorCodes);

export class AirlockError extends Error {
  override readonly name = 'AirlockError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; rule?: string },
  ) {
    super(message, options);
    this.rule = options?.rule;
  }
  /** The policy rule or check that decided a refusal (e.g. `ttl`, `scope`), for the API. */
  readonly rule: string | undefined;
}

/** The one message for a request airlock cannot record (the spool is full or failing). */
export const AUDIT_UNAVAILABLE_MESSAGE = 'airlock cannot record this request: audit unavailable';

export function auditUnavailable(cause?: unknown): AirlockError {
  return new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, AUDIT_UNAVAILABLE_MESSAGE, { cause });
}

export function isAirlockError(e: unknown, code?: ErrorCode): e is AirlockError {
  return e instanceof AirlockError && (code === undefined || e.code === code);
}
