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
    const g: Grant | undefined = event.grant;
    const receipt = this.pipeline.append({
      type: event.type,
      ...(g ? { agent: g.agent, grant: g.id, resource: g.resource, task: g.task } : {}),
      ...(event.agent !== undefined ? { agent: event.agent } : {}),
      ...(event.resource !== undefined ? { resource: event.resource } : {}),
      ...(event.session !== undefined ? { session: event.session } : {}),
      ...(event.data !== undefined ? { data: event.data } : {}),
      outcome: event.outcome,
    });
    this.observer?.({ seq: receipt.seq, type: event.type, session: event.session, outcome: event.outcome, data: event.data });
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
