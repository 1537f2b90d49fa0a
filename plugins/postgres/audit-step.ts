/**
 * The one place the Postgres plugin writes audit records and waits on them. Today it uses the
 * core's record/receipt API (`session.record` → `spooled` / `durable`); once core's
 * `ctx.audit.exchange` (plugin contract v2) is merged, these functions are the only ones to
 * change. Everything else in the plugin goes through them.
 */
import type { AuditOutcome, Session } from '../../core/plugin.ts';

/** A request record written; forward only after `spooled`, release results only after `durable`. */
export interface RecordedRequest {
  readonly seq: number;
  readonly spooled: Promise<void>;
  readonly durable: Promise<void>;
}

export function recordRequest(session: Session, type: string, data: Record<string, unknown>, outcome: AuditOutcome = 'ok'): RecordedRequest {
  return session.record(type, data, outcome);
}

/** An outcome record (e.g. `pg.result`); nothing waits on it, a failure shows up on the next request. */
export function recordOutcome(session: Session, type: string, data: Record<string, unknown>, outcome: AuditOutcome): void {
  session.record(type, data, outcome).spooled.catch(() => {});
}

/** A refusal: the request as described, outcome `denied`; resolves once durable, never throws. */
export async function recordRefusal(session: Session, type: string, data: Record<string, unknown>): Promise<void> {
  await session.record(type, data, 'denied').durable.catch(() => {});
}
