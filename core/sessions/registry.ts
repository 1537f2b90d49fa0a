/**
 * Live sessions by grant. Expiry and revocation close every session of a grant through
 * the closer its plugin registered; the registry records `session.opened`/`session.closed`
 * and keeps recent events per session for the admin API.
 */
import { randomBytes } from 'node:crypto';
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { AuditOutcome, AuditReceipt, CloseReason, Grant, Session, SessionOptions } from '../plugin.ts';
import type { Recorder } from '../gateway/recorder.ts';

const MAX_EVENTS_PER_SESSION = 500;
const MAX_ENDED_KEPT = 1000;

export interface SessionEvent {
  seq: number;
  ts: string;
  type: string;
  outcome: AuditOutcome;
  data?: Record<string, unknown> | undefined;
}

export interface SessionInfo {
  id: string;
  grant: string;
  agent: string;
  resource: string;
  resourceType: string;
  source: string | undefined;
  openedAt: string;
  closedAt: string | null;
  closeReason: CloseReason | null;
  events: SessionEvent[];
}

class LiveSession implements Session {
  closed = false;
  readonly openedAt = Date.now();
  readonly info: SessionInfo;

  constructor(
    readonly id: string,
    readonly grant: Grant,
    private readonly registry: SessionRegistry,
    private readonly recorder: Recorder,
    readonly options: SessionOptions,
  ) {
    this.info = {
      id,
      grant: grant.id,
      agent: grant.agent,
      resource: grant.resource,
      resourceType: grant.resourceType,
      source: options.source,
      openedAt: new Date(this.openedAt).toISOString(),
      closedAt: null,
      closeReason: null,
      events: [],
    };
  }

  record(type: string, data: Record<string, unknown>, outcome: AuditOutcome): AuditReceipt {
    return this.recorder.record({ type, grant: this.grant, session: this.id, data, outcome });
  }

  end(reason: CloseReason, data?: Record<string, unknown>): void {
    if (this.closed) return;
    this.closed = true;
    this.info.closedAt = new Date().toISOString();
    this.info.closeReason = reason;
    void this.record('session.closed', { reason, durationMs: Date.now() - this.openedAt, ...data }, reason === 'error' ? 'error' : 'ok').spooled.catch(() => {});
    this.registry.forget(this);
  }

  /** Closed by the core: tell the plugin first, then record. */
  terminate(reason: CloseReason, message: string): void {
    if (this.closed) return;
    try {
      const r = this.options.onClose(reason, message);
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      // A plugin's closer must not throw; if it does, the session still ends.
    }
    this.end(reason);
  }
}

export class SessionRegistry {
  private readonly byGrant = new Map<string, Set<LiveSession>>();
  private readonly byId = new Map<string, LiveSession>();
  private readonly ended: SessionInfo[] = [];

  constructor(
    private readonly recorder: Recorder,
    private readonly auditAvailable: () => boolean,
    private readonly isActive: (grantId: string) => Grant,
  ) {
    recorder.observe((e) => {
      if (!e.session) return;
      const s = this.byId.get(e.session);
      if (!s) return;
      const events = s.info.events;
      if (events.length >= MAX_EVENTS_PER_SESSION) events.shift();
      events.push({ seq: e.seq, ts: new Date().toISOString(), type: e.type, outcome: e.outcome, data: e.data });
    });
  }

  open(grant: Grant, options: SessionOptions): Session {
    const current = this.isActive(grant.id);
    if (!this.auditAvailable()) {
      throw new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'airlock audit spool is full: new sessions are refused until the audit sinks catch up');
    }
    const id = `s_${randomBytes(9).toString('base64url')}`;
    const session = new LiveSession(id, current, this, this.recorder, options);
    this.byId.set(id, session);
    let set = this.byGrant.get(grant.id);
    if (!set) this.byGrant.set(grant.id, (set = new Set()));
    set.add(session);
    session.record('session.opened', { ...(options.source ? { source: options.source } : {}), ...options.data }, 'ok');
    return session;
  }

  closeGrant(grantId: string, reason: CloseReason, message: string): number {
    const set = this.byGrant.get(grantId);
    if (!set) return 0;
    const sessions = [...set];
    for (const s of sessions) s.terminate(reason, message);
    return sessions.length;
  }

  closeAll(reason: CloseReason, message: string): void {
    for (const s of [...this.byId.values()]) s.terminate(reason, message);
  }

  forget(session: LiveSession): void {
    this.byId.delete(session.id);
    const set = this.byGrant.get(session.grant.id);
    set?.delete(session);
    if (set && set.size === 0) this.byGrant.delete(session.grant.id);
    this.ended.push(session.info);
    if (this.ended.length > MAX_ENDED_KEPT) this.ended.shift();
  }

  get liveCount(): number {
    return this.byId.size;
  }

  list(): SessionInfo[] {
    return [...[...this.byId.values()].map((s) => s.info), ...this.ended];
  }

  get(id: string): SessionInfo | undefined {
    return this.byId.get(id)?.info ?? this.ended.find((s) => s.id === id);
  }
}
