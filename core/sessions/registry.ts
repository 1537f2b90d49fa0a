/**
 * Live sessions by grant. When a grant ends (a grant event, wired by the hub) every session
 * of it is cut through the closers its plugin attached; the registry records
 * `session.opened`/`session.closed`, holds each grant to its policy's `maxSessions`, and
 * keeps recent events per session for the admin API. It asks about grants only through the
 * narrow `ActiveGrants` lookup and never calls the grant service otherwise.
 */
import { randomBytes } from 'node:crypto';
import { AirlockError, auditUnavailable, ErrorCodes } from '../errors.ts';
import type { AuditOutcome, AuditReceipt, CloseReason, Grant, GrantEndReason, Session, SessionCloser, SessionOpener, SessionOptions } from '../plugin.ts';
import type { Recorder } from '../audit/recorder.ts';

const MAX_EVENTS_PER_SESSION = 500;
const MAX_ENDED_KEPT = 1000;

/** What the registry may ask about grants. */
export interface ActiveGrants {
  /** The grant's current state; throws AirlockError unless it is active. */
  requireActive(grantId: string): Grant;
  /** `policies[].maxSessions` of the grant's policy. */
  maxSessions(grantId: string): number;
}

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

/** The message a client gets when its grant ends under it. */
export function endMessage(grantId: string, reason: GrantEndReason): { reason: CloseReason; message: string } {
  switch (reason) {
    case 'revoked':
      return { reason: 'revoked', message: `airlock grant ${grantId} was revoked` };
    case 'expired':
      return { reason: 'expired', message: `airlock grant ${grantId} expired` };
    case 'denied':
      return { reason: 'policy', message: `airlock grant ${grantId} was denied` };
    default:
      return { reason: 'error', message: `airlock grant ${grantId} ended on an error` };
  }
}

class LiveSession<Scope> implements Session<Scope> {
  closed = false;
  cut: { reason: CloseReason; message: string } | undefined;
  readonly openedAt = Date.now();
  readonly info: SessionInfo;
  private readonly closers: SessionCloser[] = [];
  private readonly abort = new AbortController();

  constructor(
    readonly id: string,
    readonly grant: Grant<Scope>,
    private readonly registry: SessionRegistry,
    private readonly recorder: Recorder,
    source: string | undefined,
  ) {
    this.info = {
      id,
      grant: grant.id,
      agent: grant.agent,
      resource: grant.resource,
      resourceType: grant.resourceType,
      source,
      openedAt: new Date(this.openedAt).toISOString(),
      closedAt: null,
      closeReason: null,
      events: [],
    };
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  record(type: string, data: Record<string, unknown>, outcome: AuditOutcome): AuditReceipt {
    return this.recorder.record({ type, grant: this.grant, session: this.id, data, outcome });
  }

  attachCloser(fn: SessionCloser): void {
    if (this.cut) return callCloser(fn, this.cut.reason, this.cut.message);
    this.closers.push(fn);
  }

  end(reason: CloseReason, data?: Record<string, unknown>): void {
    if (this.closed) return;
    this.closed = true;
    this.info.closedAt = new Date().toISOString();
    this.info.closeReason = reason;
    void this.record('session.closed', { reason, durationMs: Date.now() - this.openedAt, ...data }, reason === 'error' ? 'error' : 'ok').spooled.catch(() => {});
    this.registry.forget(this);
  }

  /** Cut by the core: tell the plugin's closers first, then record. */
  terminate(reason: CloseReason, message: string): void {
    if (this.closed || this.cut) return;
    this.cut = { reason, message };
    for (const fn of this.closers.splice(0)) callCloser(fn, reason, message);
    this.abort.abort(new AirlockError(reason === 'shutdown' ? ErrorCodes.INTERNAL : ErrorCodes.GRANT_REVOKED, message));
    this.end(reason);
  }
}

function callCloser(fn: SessionCloser | ((reason: CloseReason, message: string) => void | Promise<void>), reason: CloseReason, message: string): void {
  try {
    const r = fn(reason, message);
    if (r instanceof Promise) r.catch(() => {});
  } catch {
    // A plugin's closer must not throw; if it does, the session still ends.
  }
}

export class SessionRegistry {
  private readonly byGrant = new Map<string, Set<LiveSession<unknown>>>();
  private readonly byId = new Map<string, LiveSession<unknown>>();
  private readonly ended: SessionInfo[] = [];

  constructor(
    private readonly recorder: Recorder,
    private readonly auditAvailable: () => boolean,
    private readonly grants: ActiveGrants,
  ) {
    // Runs for every record of a session (twice per statement): the time text is made once per millisecond.
    let lastMs = NaN;
    let lastTs = '';
    recorder.observe((e) => {
      if (!e.session) return;
      const s = this.byId.get(e.session);
      if (!s) return;
      const events = s.info.events;
      if (events.length >= MAX_EVENTS_PER_SESSION) events.shift();
      const now = Date.now();
      if (now !== lastMs) {
        lastMs = now;
        lastTs = new Date(now).toISOString();
      }
      events.push({ seq: e.seq, ts: lastTs, type: e.type, outcome: e.outcome, data: e.data });
    });
  }

  /** The SessionOpener of core/plugin.ts for one plugin (typed by that plugin's scope). */
  opener<Scope>(): SessionOpener<Scope> {
    return { open: (grant, options) => this.open(grant, options) };
  }

  open<Scope>(grant: Grant<Scope>, options: SessionOptions): Session<Scope> {
    const current = this.grants.requireActive(grant.id);
    if (!this.auditAvailable()) {
      // The spool is full: a session that could not be recorded must not start.
      throw auditUnavailable();
    }
    const live = this.byGrant.get(grant.id)?.size ?? 0;
    const limit = this.grants.maxSessions(grant.id);
    if (live >= limit) {
      this.recorder.record({ type: 'policy.violation', grant: current, outcome: 'denied', data: { action: 'session.open', rule: 'maxSessions', reason: `grant ${grant.id} already has ${live} live sessions (maxSessions ${limit})`, ...(options.source ? { source: options.source } : {}) } });
      throw new AirlockError(ErrorCodes.SESSION_LIMIT, `airlock grant ${grant.id} already has ${live} live sessions (the policy allows ${limit})`);
    }
    const id = `s_${randomBytes(9).toString('base64url')}`;
    // The caller's grant keeps its parsed scope; status and expiry are the current ones.
    const session = new LiveSession<Scope>(id, { ...current, scope: grant.scope }, this, this.recorder, options.source);
    this.byId.set(id, session);
    let set = this.byGrant.get(grant.id);
    if (!set) this.byGrant.set(grant.id, (set = new Set()));
    set.add(session);
    session.record('session.opened', { ...(options.source ? { source: options.source } : {}), ...options.data }, 'ok');
    const onClose = options.onClose;
    if (onClose) session.attachCloser((reason, message) => callCloser(onClose, reason, message));
    return session;
  }

  /** Cut every live session of a grant (a grant `ended` event). Returns how many. */
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

  forget(session: LiveSession<unknown>): void {
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
