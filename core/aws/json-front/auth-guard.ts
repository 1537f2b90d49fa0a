/**
 * The front's guard against unauthenticated traffic: the `auth.failed` record of every
 * failed verification (claimed key id, never the secret), counted in the gateway's one
 * failure limiter. Past the budget a failure is answered as throttling; a request whose
 * signature verifies is never refused, whatever else came from its address.
 */
import { AirlockError, ErrorCodes, isAirlockError } from '../../errors.ts';
import type { AuditRecorder } from '../../plugin.ts';
import { parseAuthorization } from '../sigv4-inbound.ts';
import type { Logger } from 'pino';

/** Best effort: which key the client claimed, for `auth.failed`. Never the secret. */
export function claimedKey(headers: Record<string, string>): string | undefined {
  const authorization = headers['authorization'];
  if (authorization === undefined) return undefined;
  try {
    return parseAuthorization(authorization).accessKeyId;
  } catch {
    return undefined;
  }
}

export class AuthGuard {
  constructor(
    private readonly audit: AuditRecorder,
    private readonly service: string,
    private readonly log: Logger,
  ) {}

  /**
   * A verification failed: record what was claimed and return the error to answer with
   * (the original one, or throttling once the address is past its failure budget).
   */
  failed(e: unknown, at: { source: string | undefined; headers: Record<string, string>; resourceOf: (claimedId: string) => string | undefined }): unknown {
    const claimedId = claimedKey(at.headers);
    try {
      const { limited } = this.audit.authRefused({
        resource: claimedId === undefined ? undefined : at.resourceOf(claimedId),
        claimedId,
        source: at.source,
        code: isAirlockError(e) ? e.code : ErrorCodes.INTERNAL,
        reason: isAirlockError(e) ? e.message : 'internal error',
        data: { service: this.service, target: at.headers['x-amz-target']?.slice(0, 128) },
      });
      if (limited) return new AirlockError(ErrorCodes.RATE_LIMITED, 'Too many failed authentications from this address; retry later');
    } catch (auditError) {
      this.log.error({ err: String(auditError) }, 'cannot record auth.failed');
    }
    return e;
  }
}
