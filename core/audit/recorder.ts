/**
 * The meaning-level audit calls (grant events, session events, auth failures, audited
 * exchanges) over the pipeline's raw `append`. Plugins and the control API record through
 * this; it fills the identity fields from the grant so no caller can forget them.
 */
import { createHash } from 'node:crypto';
import type { AuditEventInput, AuditExchange, AuditOutcome, AuditReceipt, AuditRecorder, AuthFailedInput, ExchangeEvent, Grant, Session } from '../plugin.ts';
import type { AuditInput } from './chain.ts';
import type { AppendedReceipt } from './pipeline.ts';
import { AuditExchangeImpl } from './exchange.ts';
import { AuthFailureDigest } from './auth-digest.ts';
import { addressOf, FailureLimiter } from './failure-limiter.ts';
import { ErrorCodes } from '../errors.ts';
import type { MetricSample } from '../metrics/prometheus.ts';

/** The part of the audit pipeline the recorder needs. */
export interface AuditAppender {
  append(input: AuditInput): AppendedReceipt;
  /** Call `fn` once what was appended is in the spool (AuditPipeline.whenSpooled). */
  whenSpooled(fn: (error: Error | undefined) => void): void;
  /** Share of the spool cap in use (0..1+); without it noise is never held back. */
  readonly spoolUse?: number;
}

export interface RecorderOptions {
  /** How long one source's failures are gathered into one `auth.failed.summary` (default 60 s). */
  authFailureSummaryMs?: number | undefined;
  /** The gateway's failure limiter (default: a new one). */
  limiter?: FailureLimiter | undefined;
}

/** Observes every session record (sessions keep their own events for GET /v1/sessions/:id). */
export type RecordObserver = (event: { seq: number; type: string; session?: string; grant?: string; outcome: AuditOutcome; data?: Record<string, unknown> }) => void;

/** The shape of a grant id (`AG` + 18 base32): only such a claim is recorded in clear. */
const GRANT_ID_SHAPE = /^AG[A-Z2-7]{18}$/;

/**
 * What `auth.failed` records of a claimed credential id: the id itself when it looks like a
 * grant id, else `h:<12 hex>` of its SHA-256, so a secret typed into the user field (or an
 * access key pasted by mistake) never lands in the audit in clear, yet repeats still match.
 */
export function recordedClaim(claimed: string): string {
  if (GRANT_ID_SHAPE.test(claimed)) return claimed;
  return `h:${createHash('sha256').update(claimed).digest('hex').slice(0, 12)}`;
}

export class Recorder implements AuditRecorder {
  private readonly observers: RecordObserver[] = [];
  private readonly limiter: FailureLimiter;
  private readonly digest: AuthFailureDigest;

  constructor(
    private readonly pipeline: AuditAppender,
    options: RecorderOptions = {},
  ) {
    this.limiter = options.limiter ?? new FailureLimiter();
    this.digest = new AuthFailureDigest({
      intervalMs: options.authFailureSummaryMs ?? 60_000,
      spoolUse: () => pipeline.spoolUse ?? 0,
      write: (type, data, resource) => this.record({ type, resource, outcome: 'denied', data }),
    });
  }

  metricSamples(): MetricSample[] {
    return this.digest.metricSamples();
  }

  /** Write the pending `auth.failed.summary` records now. */
  flushAuthFailures(): void {
    this.digest.flush();
  }

  observe(observer: RecordObserver): void {
    this.observers.push(observer);
  }

  record(event: AuditEventInput): AuditReceipt {
    return this.write(event, false);
  }

  /** `lazy`: nobody awaits the record's `durable` (an exchange's outcome), so strict need not sync for it alone. */
  private write(event: AuditEventInput, lazy: boolean): AuditReceipt {
    // Built field by field, not with spreads: this runs once or twice per statement.
    const g: Grant<unknown> | undefined = event.grant;
    const input: AuditInput = { type: event.type, outcome: event.outcome };
    if (g) {
      input.agent = g.agent;
      input.grant = g.id;
      input.resource = g.resource;
      input.task = g.task;
    }
    if (event.agent !== undefined) input.agent = event.agent;
    if (event.resource !== undefined) input.resource = event.resource;
    if (event.session !== undefined) input.session = event.session;
    if (event.data !== undefined) input.data = event.data;
    if (lazy) input.lazy = true;
    const receipt = this.pipeline.append(input);
    if (this.observers.length > 0 && event.session !== undefined) {
      const seen = { seq: receipt.seq, type: event.type, session: event.session, grant: input.grant, outcome: event.outcome, data: receipt.data ?? event.data };
      for (const observer of this.observers) observer(seen);
    }
    // The caller gets the receipt only: the record's own data stays with the audit.
    return { seq: receipt.seq, spooled: receipt.spooled, durable: receipt.durable };
  }

  /**
   * Every failed authentication of every front comes through here: it counts against its
   * source's address in the gateway's limiter, and is recorded in full or into its
   * source's summary (auth-digest.ts), so a flood cannot fill the spool.
   */
  authFailed(input: AuthFailedInput): AuditReceipt {
    const address = addressOf(input.source);
    this.limiter.fail(address);
    const data: Record<string, unknown> = {
      code: input.code,
      reason: input.reason,
      ...(input.claimedId !== undefined && input.claimedId !== '' ? { claimedId: recordedClaim(input.claimedId) } : {}),
      ...(input.source !== undefined ? { source: input.source } : {}),
      ...input.data,
    };
    return this.digest.note(address, data, input.resource);
  }

  authRefused(input: AuthFailedInput): { limited: boolean; receipt: AuditReceipt } {
    const limited = this.limiter.blocked(addressOf(input.source));
    const receipt = this.authFailed(limited ? { ...input, code: ErrorCodes.RATE_LIMITED, data: { ...input.data, failure: input.code } } : input);
    return { limited, receipt };
  }

  whenSpooled(fn: (error: Error | undefined) => void): void {
    // The spool's own failures are AUDIT_UNAVAILABLE already (spool-writer.ts, pipeline.ts).
    this.pipeline.whenSpooled(fn);
  }

  exchange(on: Grant<unknown> | Session<unknown>, event: ExchangeEvent): AuditExchange {
    const session = 'openedAt' in on ? on : undefined;
    const grant = 'openedAt' in on ? on.grant : on;
    return new AuditExchangeImpl((type, data, outcome, lazy) => this.write({ type, grant, session: session?.id, data, outcome }, lazy), event);
  }
}
