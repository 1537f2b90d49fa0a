/**
 * One audited exchange, the durability rule of docs/design.md in one place:
 *
 *   ready()   request record → spooled      (only then may anything reach the upstream)
 *   durable() request durable                (a stream's early results are released only then)
 *   finish()  outcome record → request durable + outcome spooled (only then the client sees it)
 *   refuse()  the request (or its outcome) recorded as denied → durable
 *
 * A receipt that fails becomes AirlockError AUDIT_UNAVAILABLE with one message.
 */
import { auditUnavailable, ErrorCodes, type ErrorCode } from '../errors.ts';
import type { AuditExchange, AuditOutcome, AuditReceipt, ExchangeEvent } from '../plugin.ts';

/** `lazy`: nothing will await the record's `durable` (strict mode may sync it with the next group commit). */
type Write = (type: string, data: Record<string, unknown>, outcome: AuditOutcome, lazy: boolean) => AuditReceipt;

/** Codes that mean airlock (not the client) failed: the record's outcome is `error`. */
const AIRLOCK_FAILURES: ReadonlySet<ErrorCode> = new Set([ErrorCodes.INTERNAL, ErrorCodes.UPSTREAM_FAILED, ErrorCodes.AUDIT_UNAVAILABLE, ErrorCodes.STORE_UNAVAILABLE]);

export function resultTypeOf(event: ExchangeEvent): string {
  if (event.resultType !== undefined) return event.resultType;
  return event.type.endsWith('.request') ? `${event.type.slice(0, -'.request'.length)}.response` : `${event.type}.result`;
}

/**
 * A receipt's promise as the exchange hands it out: the same resolution, a failure turned into
 * AUDIT_UNAVAILABLE with the one message. Receipts share their promises per spool batch (one
 * per event-loop turn), so the mapped promise is made once per batch and shared too, not once
 * per call: an `async` wrapper per ready()/durable() was about 2 KB of garbage per statement
 * (bench/README.md, tenth pass). A failure nobody awaits is not an unhandled rejection (the
 * stream that ignores `ready()` learns it from `whenSpooled`).
 */
const AS_EXCHANGE = new WeakMap<Promise<void>, Promise<void>>();

function settled(p: Promise<void>): Promise<void> {
  let mapped = AS_EXCHANGE.get(p);
  if (mapped === undefined) {
    mapped = p.then(undefined, (e: unknown) => {
      throw auditUnavailable(e);
    });
    mapped.catch(NOOP);
    AS_EXCHANGE.set(p, mapped);
  }
  return mapped;
}

function NOOP(): void {}

export class AuditExchangeImpl implements AuditExchange {
  private request: AuditReceipt | undefined;

  constructor(
    private readonly write: Write,
    private readonly event: ExchangeEvent,
  ) {}

  get seq(): number | undefined {
    return this.request?.seq;
  }

  ready(): Promise<void> {
    if (this.request) return settled(this.request.spooled);
    let receipt: AuditReceipt;
    try {
      receipt = this.write(this.event.type, this.event.data, 'ok', false);
    } catch (e) {
      return Promise.reject(auditUnavailable(e));
    }
    this.request = receipt;
    return settled(receipt.spooled);
  }

  finish(outcome: AuditOutcome, data?: Record<string, unknown>): Promise<void> {
    if (!this.request) return Promise.reject(new Error('AuditExchange.finish before ready'));
    const request = this.request;
    let result: AuditReceipt;
    try {
      // Only spooled is awaited below: the outcome rides on the next group commit.
      result = this.write(resultTypeOf(this.event), { ...data, requestSeq: request.seq }, outcome, true);
    } catch (e) {
      return Promise.reject(auditUnavailable(e));
    }
    const requestDurable = settled(request.durable);
    const resultSpooled = settled(result.spooled);
    // One batch (buffered, or both written in one turn): one promise serves both.
    return requestDurable === resultSpooled ? requestDurable : requestDurable.then(() => resultSpooled);
  }

  durable(): Promise<void> {
    if (!this.request) return Promise.reject(new Error('AuditExchange.durable before ready'));
    return settled(this.request.durable);
  }

  async refuse(code: ErrorCode, reason: string, data?: Record<string, unknown>): Promise<void> {
    const outcome: AuditOutcome = AIRLOCK_FAILURES.has(code) ? 'error' : 'denied';
    try {
      const receipt = this.request
        ? this.write(resultTypeOf(this.event), { requestSeq: this.request.seq, code, reason, ...data }, outcome, false)
        : this.write(this.event.type, { ...this.event.data, code, reason, ...data }, outcome, false);
      await receipt.durable;
    } catch {
      // The refusal stands whether or not it could be recorded; a full spool is visible in /metrics.
    }
  }
}
