/**
 * The front's guard against unauthenticated traffic: per-address failure budget, and the
 * `auth.failed` record of every failed verification (claimed key id, never the secret).
 */
import { ErrorCodes, isAirlockError, type ErrorCode } from '../../errors.ts';
import type { AuditRecorder } from '../../plugin.ts';
import { FailureLimiter } from '../../api/rate-limit.ts';
import { parseAuthorization } from '../sigv4-inbound.ts';
import type { Logger } from 'pino';

/**
 * Failed authentications one address may cause per minute before it is refused unheard.
 * Secrets are 240-bit, so this is not about guessing: it keeps a misbehaving client from
 * flooding the audit with `auth.failed` records (one record notes the block instead).
 */
export const AUTH_FAILURES_PER_MINUTE = 100;

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
  private readonly failures = new FailureLimiter(AUTH_FAILURES_PER_MINUTE, 60_000);
  /** When each blocked address was last noted in the audit. */
  private readonly blockNoted = new Map<string, number>();

  constructor(
    private readonly audit: AuditRecorder,
    private readonly service: string,
    private readonly log: Logger,
  ) {}

  /** True when the address is past its budget (noted in the audit once a minute). */
  blocked(address: string, source: string | undefined): boolean {
    if (!this.failures.blocked(address)) return false;
    const now = Date.now();
    if ((this.blockNoted.get(address) ?? 0) < now - 60_000) {
      this.blockNoted.set(address, now);
      if (this.blockNoted.size > 10_000) this.blockNoted.clear();
      this.note({ source, code: ErrorCodes.RATE_LIMITED, reason: `more than ${AUTH_FAILURES_PER_MINUTE} failed authentications in a minute; refusing this address for now` });
    }
    return true;
  }

  /** A verification failed: count it against the address and record what was claimed. */
  failed(address: string, e: unknown, at: { source: string | undefined; headers: Record<string, string>; resourceOf: (claimedId: string) => string | undefined }): void {
    this.failures.fail(address);
    const claimedId = claimedKey(at.headers);
    this.note({
      resource: claimedId === undefined ? undefined : at.resourceOf(claimedId),
      claimedId,
      source: at.source,
      code: isAirlockError(e) ? e.code : ErrorCodes.INTERNAL,
      reason: isAirlockError(e) ? e.message : 'internal error',
      data: { target: at.headers['x-amz-target']?.slice(0, 128) },
    });
  }

  private note(input: { resource?: string | undefined; claimedId?: string | undefined; source: string | undefined; code: ErrorCode; reason: string; data?: Record<string, unknown> }): void {
    try {
      this.audit.authFailed({ ...input, data: { service: this.service, ...input.data } });
    } catch (auditError) {
      this.log.error({ err: String(auditError) }, 'cannot record auth.failed');
    }
  }
}
