/**
 * The meaning-level audit calls (grant events, session events, auth failures) over the
 * pipeline's raw `append`. Plugins and the control API record through this; it fills the
 * identity fields from the grant so no caller can forget them.
 */
import type { AuditEventInput, AuditOutcome, AuditReceipt, AuditRecorder, Grant } from '../plugin.ts';
import type { AuditInput } from '../audit/chain.ts';

/** The part of the audit pipeline the recorder needs. */
export interface AuditAppender {
  append(input: AuditInput): AuditReceipt;
}

/** Observes every record (sessions keep their own events for GET /v1/sessions/:id). */
export type RecordObserver = (event: { seq: number; type: string; session?: string; outcome: AuditOutcome; data?: Record<string, unknown> }) => void;

export class Recorder implements AuditRecorder {
  private observer: RecordObserver | undefined;
  constructor(private readonly pipeline: AuditAppender) {}

  observe(observer: RecordObserver): void {
    this.observer = observer;
  }

  record(event: AuditEventInput): AuditReceipt {
    // Built field by field, not with spreads: this runs once or twice per statement.
    const g: Grant | undefined = event.grant;
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
    const receipt = this.pipeline.append(input);
    if (this.observer && event.session !== undefined) {
      this.observer({ seq: receipt.seq, type: event.type, session: event.session, outcome: event.outcome, data: event.data });
    }
    return receipt;
  }

  authFailed(input: Parameters<AuditRecorder['authFailed']>[0]): AuditReceipt {
    return this.record({
      type: 'auth.failed',
      resource: input.resource,
      outcome: 'denied',
      data: {
        code: input.code,
        reason: input.reason,
        ...(input.claimedId !== undefined ? { claimedId: input.claimedId.slice(0, 128) } : {}),
        ...(input.source !== undefined ? { source: input.source } : {}),
        ...input.data,
      },
    });
  }
}
