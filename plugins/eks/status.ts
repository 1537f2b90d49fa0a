/**
 * Kubernetes `Status` objects: the one place airlock error codes become wire errors that
 * kubectl prints the way it prints the API server's own.
 */
import type { ErrorCode } from '../../core/errors.ts';
import { ErrorCodes, isAirlockError } from '../../core/errors.ts';

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  code: number;
  details?: { name?: string; group?: string; kind?: string } | undefined;
}

export function kubeStatus(code: number, reason: string, message: string, details?: KubeStatus['details']): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) };
}

const BY_CODE: Record<ErrorCode, { http: number; reason: string }> = {
  [ErrorCodes.GRANT_UNKNOWN]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.BAD_CREDENTIAL]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.GRANT_PENDING]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.GRANT_EXPIRED]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.GRANT_REVOKED]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.GRANT_DENIED]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.WRONG_RESOURCE]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.SIGNATURE_MISMATCH]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.REQUEST_EXPIRED]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.OUT_OF_SCOPE]: { http: 403, reason: 'Forbidden' },
  [ErrorCodes.UNRESOLVABLE]: { http: 403, reason: 'Forbidden' },
  [ErrorCodes.BAD_REQUEST]: { http: 400, reason: 'BadRequest' },
  [ErrorCodes.TOO_LARGE]: { http: 413, reason: 'RequestEntityTooLarge' },
  [ErrorCodes.RATE_LIMITED]: { http: 429, reason: 'TooManyRequests' },
  [ErrorCodes.AUDIT_UNAVAILABLE]: { http: 503, reason: 'ServiceUnavailable' },
  [ErrorCodes.UPSTREAM_FAILED]: { http: 502, reason: 'InternalError' },
  [ErrorCodes.INTERNAL]: { http: 500, reason: 'InternalError' },
  [ErrorCodes.GRANT_NOT_FOUND]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.GRANT_STATE]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.FORBIDDEN]: { http: 403, reason: 'Forbidden' },
  [ErrorCodes.BAD_IDENTITY]: { http: 401, reason: 'Unauthorized' },
  [ErrorCodes.SESSION_LIMIT]: { http: 429, reason: 'TooManyRequests' },
  [ErrorCodes.STORE_UNAVAILABLE]: { http: 503, reason: 'ServiceUnavailable' },
};

/** Map any thrown value to a Status; unknown errors are internal and say nothing more. */
export function statusForError(e: unknown): KubeStatus {
  if (isAirlockError(e)) {
    const m = BY_CODE[e.code];
    return kubeStatus(m.http, m.reason, `airlock: ${e.message}`);
  }
  return kubeStatus(500, 'InternalError', 'airlock: internal error');
}

export function statusResponse(status: KubeStatus, extraHeaders?: Record<string, string>): Response {
  if (status.code >= 500) {
    // airlock's own 5xx (cluster unreachable, audit unavailable) go out as text, like any
    // proxy's: client-go's discovery client shows a text body but hides a JSON Status
    // behind "an error on the server (\"unknown\")", and discovery is kubectl's first call.
    return new Response(`${status.message}\n`, { status: status.code, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...extraHeaders } });
  }
  return new Response(JSON.stringify(status), {
    status: status.code,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...extraHeaders },
  });
}
