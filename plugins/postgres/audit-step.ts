/**
 * The one place the Postgres plugin writes audit records and waits on them, all through the
 * core's audited exchange (`ctx.audit.exchange`, docs/design.md "durability rule"):
 * a statement's `pg.query` is the exchange's request (forward the chunk once `ready`, release
 * the rows the server streams back once `settled`), its `pg.result` the exchange's outcome.
 */
import { ErrorCodes } from '../../core/errors.ts';
import type { AuditExchange, AuditOutcome, AuditRecorder, Session } from '../../core/plugin.ts';

/** A statement's request record, written: forward only after `ready`, release results only after `settled`. */
export interface RecordedStatement {
  readonly ready: Promise<void>;
  readonly settled: Promise<void>;
  readonly exchange: AuditExchange;
}

export function recordStatement(audit: AuditRecorder, session: Session, data: Record<string, unknown>): RecordedStatement {
  const exchange = audit.exchange(session, { type: 'pg.query', data, resultType: 'pg.result' });
  const ready = exchange.ready(); // writes the record now (the seq is known at once)
  return { ready, settled: exchange.durable(), exchange };
}

/**
 * The statement's outcome (`pg.result`, which also keeps `query: <seq>` as before). Nothing
 * waits on it: the rows it describes were released on `settled`, and a failing audit shows up
 * on the next statement's `ready`.
 */
export function recordResult(statement: AuditExchange, data: Record<string, unknown>, outcome: AuditOutcome): void {
  statement.finish(outcome, data).catch(() => {});
}

/** An event in the session nothing waits on (e.g. `pg.cancel`). */
export function recordEvent(session: Session, type: string, data: Record<string, unknown>): void {
  session.record(type, data, 'ok');
}

/** A refusal: the request as described, outcome `denied`, with the reason; resolves once durable, never throws. */
export function recordRefusal(audit: AuditRecorder, session: Session, type: string, data: Record<string, unknown>, reason: string): Promise<void> {
  return audit.exchange(session, { type, data }).refuse(ErrorCodes.FORBIDDEN, reason);
}
