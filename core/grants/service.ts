/**
 * The grant lifecycle: request → policy → issue (or pending → approve | deny) → expire /
 * revoke. Every transition is persisted and recorded; when a grant becomes active or ends,
 * the service publishes a grant event (core/grants/events.ts) and knows nothing of who
 * listens (sessions, the AWS layer, plugins). Refusals are AirlockErrors with codes; the
 * control API maps codes to HTTP statuses.
 */
import { hasVisibleText } from './task.ts';
import { z } from 'zod';
import { AirlockError, ErrorCodes, isAirlockError, type ErrorCode } from '../errors.ts';
import type { ConnectInfo, Grant, GrantEndReason, RegisteredPlugin } from '../plugin.ts';
import type { AirlockConfig } from '../config/schema.ts';
import { parseDuration } from '../config/duration.ts';
import { evaluatePolicy } from '../policy/evaluate.ts';
import type { Recorder } from '../audit/recorder.ts';
import type { GrantStore } from './store.ts';
import type { GrantRecord } from './record.ts';
import type { GrantEvents } from './events.ts';
import { makeVerifiers, newGrantId, newGrantSecret, utcDatesBetween } from './credentials.ts';

/** How long a pending grant waits for approval before it expires unused. */
const PENDING_WINDOW_MS = 24 * 3_600_000;
/** setTimeout cannot wait longer than this; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** `policies[].maxSessions` when a grant's policy is gone from the config. */
export const DEFAULT_MAX_SESSIONS = 10;

export const grantRequestSchema = z.strictObject({
  resource: z.string().min(1).max(128),
  access: z.string().min(1).max(64),
  scope: z.record(z.string(), z.unknown()).optional(),
  ttl: z.string().max(32),
  task: z.string().trim().max(2000).refine(hasVisibleText, 'task is required: say why the grant is needed'),
});
export type GrantRequest = z.infer<typeof grantRequestSchema>;

export const denyRequestSchema = z.strictObject({
  reason: z.string().trim().min(1, 'reason is required: say why the grant is denied').max(2000),
});

export interface IssuedGrant {
  status: 201 | 202;
  /** `secret` and `connect` are absent for a secretless grant (MCP). */
  body: PublicGrant & { secret?: string; connect?: ConnectInfo };
}

export interface PublicGrant {
  id: string;
  agent: string;
  status: Grant['status'];
  resource: string;
  access: string;
  scope: Record<string, unknown>;
  task: string;
  ttl: string;
  createdAt: string;
  approvedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface RequestOptions {
  /** No secret exists: no verifiers are stored, none is returned, and no `connect`. */
  secretless?: boolean | undefined;
}

export interface GrantServiceOptions {
  config: AirlockConfig;
  plugins: ReadonlyMap<string, RegisteredPlugin>;
  store: GrantStore;
  recorder: Recorder;
  /** Where the service publishes `activated` / `ended`. */
  events: GrantEvents;
  /** `connect` for a new grant (the started plugin of its type answers). */
  connectInfo: (grant: Grant, secret: string) => ConnectInfo;
  auditAvailable: () => boolean;
  /** Failures of asynchronous `ended` subscribers (logged by the hub). */
  onSubscriberError?: ((e: unknown) => void) | undefined;
}

function refusal(code: ErrorCode, rule: string, message: string): AirlockError {
  return new AirlockError(code, message, { rule });
}

export class GrantService {
  private readonly grants = new Map<string, GrantRecord>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private counters = { issued: 0, pending: 0, denied: 0, approved: 0, revoked: 0, expired: 0 };
  private readonly config: AirlockConfig;
  private readonly plugins: ReadonlyMap<string, RegisteredPlugin>;
  private readonly store: GrantStore;
  private readonly recorder: Recorder;
  private readonly events: GrantEvents;

  constructor(private readonly options: GrantServiceOptions) {
    ({ config: this.config, plugins: this.plugins, store: this.store, recorder: this.recorder, events: this.events } = options);
  }

  async load(): Promise<void> {
    for (const g of await this.store.load()) {
      this.grants.set(g.id, g);
      this.schedule(g);
    }
  }

  metrics(): Readonly<typeof this.counters> & { active: number; pending: number } {
    let active = 0;
    let pending = 0;
    for (const g of this.grants.values()) {
      if (g.status === 'active') active++;
      if (g.status === 'pending') pending++;
    }
    return { ...this.counters, active, pending };
  }

  // ---- lookups ------------------------------------------------------------------------

  record(id: string): GrantRecord | undefined {
    return this.grants.get(id);
  }

  view(id: string): Grant | undefined {
    const g = this.grants.get(id);
    return g && toGrant(this.refresh(g));
  }

  /** The current record (expiry applied) for lookups that hand it on (authenticator). */
  current(id: string): GrantRecord | undefined {
    const g = this.grants.get(id);
    return g && this.refresh(g);
  }

  /** Throws unless the grant exists and is active right now (timers aside). */
  requireActive(id: string): Grant {
    return toGrant(this.requireActiveRecord(id));
  }

  requireActiveRecord(id: string): GrantRecord {
    const g = this.grants.get(id);
    if (!g) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'unknown grant');
    const current = this.refresh(g);
    switch (current.status) {
      case 'active':
        return current;
      case 'pending':
        throw new AirlockError(ErrorCodes.GRANT_PENDING, `grant ${id} is waiting for approval`);
      case 'expired':
        throw new AirlockError(ErrorCodes.GRANT_EXPIRED, `grant ${id} has expired`);
      case 'revoked':
        throw new AirlockError(ErrorCodes.GRANT_REVOKED, `grant ${id} has been revoked`);
      default:
        throw new AirlockError(ErrorCodes.GRANT_DENIED, `grant ${id} is not usable`);
    }
  }

  /** Live sessions a grant may hold at once: its policy's `maxSessions`. */
  maxSessions(id: string): number {
    const g = this.grants.get(id);
    return (g && this.config.policies[g.policy]?.maxSessions) ?? DEFAULT_MAX_SESSIONS;
  }

  /** Active grants of one resource type (start-up sweeps of plugins). */
  activeRecords(resourceType: string): GrantRecord[] {
    return [...this.grants.values()].map((g) => this.refresh(g)).filter((g) => g.status === 'active' && g.resourceType === resourceType);
  }

  publicView(id: string): PublicGrant | undefined {
    const g = this.grants.get(id);
    return g && toPublic(this.refresh(g));
  }

  list(agent?: string): PublicGrant[] {
    return [...this.grants.values()].filter((g) => agent === undefined || g.agent === agent).map((g) => toPublic(this.refresh(g)));
  }

  // ---- transitions --------------------------------------------------------------------

  async request(agent: string, raw: unknown, options: RequestOptions = {}): Promise<IssuedGrant> {
    const req = this.parseRequest(agent, raw);
    this.recorder.record({ type: 'grant.requested', agent, resource: req.resource, outcome: 'ok', data: { access: req.access, ttl: req.ttl, task: req.task, ...(req.scope ? { scope: req.scope } : {}) } });
    const decided = this.decide(agent, req);
    const secret = options.secretless ? undefined : newGrantSecret();
    const record = await this.newRecord(agent, req, decided, secret);
    const grant = toGrant(record);
    this.grants.set(record.id, record);
    if (record.status === 'active') await this.activate(record, 'issue');
    await this.store.put(record);
    this.schedule(record);
    const pending = record.status === 'pending';
    await this.recorder.record({
      type: pending ? 'grant.pending' : 'grant.issued',
      grant,
      outcome: 'ok',
      data: { access: req.access, scope: record.scope, ttl: req.ttl, expiresAt: record.expiresAt, policy: decided.policyIndex, ...(secret === undefined ? { secretless: true } : {}) },
    }).durable;
    pending ? this.counters.pending++ : this.counters.issued++;
    const body: IssuedGrant['body'] = toPublic(record);
    if (secret !== undefined) {
      body.secret = secret;
      body.connect = this.options.connectInfo(grant, secret);
    }
    return { status: pending ? 202 : 201, body };
  }

  async approve(id: string, admin: string): Promise<PublicGrant> {
    const current = this.pendingRecord(id, admin, 'approve');
    const now = Date.now();
    const next: GrantRecord = { ...current, status: 'active', approvedAt: new Date(now).toISOString(), approvedBy: admin, expiresAt: new Date(now + current.ttlMs).toISOString(), pendingUntil: null };
    this.grants.set(id, next);
    await this.activate(next, 'approve');
    await this.store.put(next);
    this.schedule(next);
    this.counters.approved++;
    await this.recorder.record({ type: 'grant.approved', grant: toGrant(next), outcome: 'ok', data: { by: admin, expiresAt: next.expiresAt } }).durable;
    return toPublic(next);
  }

  /** An admin (never the requester) turns a pending grant down, saying why. */
  async deny(id: string, admin: string, reason: string): Promise<PublicGrant> {
    const current = this.pendingRecord(id, admin, 'deny');
    const next: GrantRecord = { ...current, status: 'denied', pendingUntil: null };
    this.grants.set(id, next);
    this.clearTimer(id);
    const ended = this.publishEnded(next, 'denied');
    await this.store.put(next);
    this.counters.denied++;
    await this.recorder.record({ type: 'grant.denied', grant: toGrant(next), outcome: 'denied', data: { rule: 'admin', reason, by: admin } }).durable;
    await ended;
    return toPublic(next);
  }

  async revoke(id: string, by: string): Promise<PublicGrant> {
    const g = this.grants.get(id);
    if (!g) throw refusal(ErrorCodes.GRANT_NOT_FOUND, 'grant', `unknown grant ${id}`);
    const current = this.refresh(g);
    if (current.status !== 'active' && current.status !== 'pending') throw refusal(ErrorCodes.GRANT_STATE, 'state', `grant ${id} is already ${current.status}`);
    const next: GrantRecord = { ...current, status: 'revoked', revokedAt: new Date().toISOString(), revokedBy: by };
    this.grants.set(id, next);
    this.clearTimer(id);
    // Published before persisting: live sessions are cut now, even if the store is slow.
    const ended = this.publishEnded(next, 'revoked');
    await this.store.put(next);
    this.counters.revoked++;
    await this.recorder.record({ type: 'grant.revoked', grant: toGrant(next), outcome: 'ok', data: { by } }).durable;
    await ended;
    return toPublic(next);
  }

  /** A refused control action (approve without rights, self-approval): recorded, then thrown. */
  violation(agent: string, grant: Grant | undefined, action: string, reason: string): AirlockError {
    this.recorder.record({ type: 'policy.violation', agent, resource: grant?.resource, outcome: 'denied', data: { action, reason, ...(grant ? { grantId: grant.id } : {}) } });
    return refusal(ErrorCodes.FORBIDDEN, action, reason);
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  // ---- stages of a request --------------------------------------------------------------

  private parseRequest(agent: string, raw: unknown): GrantRequest {
    const parsed = grantRequestSchema.safeParse(raw);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
    const message = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : issue.message;
    throw this.refuseRequest(agent, raw, ErrorCodes.BAD_REQUEST, 'request', `${where}${message}`);
  }

  /** Resource, access level, policy and scope: everything that can say no before a grant exists. */
  private decide(agent: string, req: GrantRequest): { ttlMs: number; plugin: RegisteredPlugin; resourceType: string; scope: Record<string, unknown>; approval: boolean; policyIndex: number } {
    const ttlMs = parseDuration(req.ttl);
    if (ttlMs === undefined) throw this.refuseRequest(agent, req, ErrorCodes.BAD_REQUEST, 'ttl', `ttl "${req.ttl}" is not a duration like 90s, 15m, 1h`);
    const resource = this.config.resources[req.resource];
    if (!resource) throw this.refuseRequest(agent, req, ErrorCodes.FORBIDDEN, 'resource', `unknown resource "${req.resource}"`);
    const plugin = this.plugins.get(resource.type);
    if (!plugin) throw this.refuseRequest(agent, req, ErrorCodes.FORBIDDEN, 'resource', `resource "${req.resource}" has no plugin`);
    const levels = plugin.accessLevels(resource);
    if (!levels.includes(req.access)) {
      throw this.refuseRequest(agent, req, ErrorCodes.FORBIDDEN, 'access', `resource "${req.resource}" has no access level "${req.access}" (levels: ${levels.join(', ')})`);
    }
    const decision = evaluatePolicy(this.config.policies, { agent, resource: req.resource, access: req.access, ttlMs });
    if (!decision.allowed) throw this.refuseRequest(agent, req, ErrorCodes.FORBIDDEN, decision.rule, decision.reason);
    let scope: Record<string, unknown>;
    try {
      scope = plugin.resolveScope(resource, req.access, req.scope);
    } catch (e) {
      if (isAirlockError(e)) throw this.refuseRequest(agent, req, e.code === ErrorCodes.OUT_OF_SCOPE ? ErrorCodes.OUT_OF_SCOPE : ErrorCodes.BAD_REQUEST, 'scope', e.message);
      throw e;
    }
    if (!this.options.auditAvailable()) throw this.refuseRequest(agent, req, ErrorCodes.AUDIT_UNAVAILABLE, 'audit', 'audit spool is full: grants are refused until the audit sinks catch up');
    return { ttlMs, plugin, resourceType: resource.type, scope, approval: decision.approval === 'required', policyIndex: decision.policyIndex };
  }

  private async newRecord(agent: string, req: GrantRequest, d: ReturnType<GrantService['decide']>, secret: string | undefined): Promise<GrantRecord> {
    const now = Date.now();
    const pending = d.approval;
    // SigV4 keys for every date the grant could be used on (pending grants may be approved later).
    const lastUse = now + (pending ? PENDING_WINDOW_MS : 0) + d.ttlMs;
    const verifiers = secret === undefined ? {} : await makeVerifiers(secret, new Set(d.plugin.credentials), utcDatesBetween(now - 300_000, lastUse + 300_000));
    return {
      id: newGrantId(),
      agent,
      resource: req.resource,
      resourceType: d.resourceType,
      access: req.access,
      scope: d.scope,
      task: req.task,
      status: pending ? 'pending' : 'active',
      createdAt: new Date(now).toISOString(),
      approvedAt: null,
      approvedBy: null,
      expiresAt: pending ? null : new Date(now + d.ttlMs).toISOString(),
      pendingUntil: pending ? new Date(now + PENDING_WINDOW_MS).toISOString() : null,
      ttlMs: d.ttlMs,
      revokedAt: null,
      revokedBy: null,
      policy: d.policyIndex,
      verifiers,
    };
  }

  /**
   * Publish `activated` and wait for its subscribers (a plugin preparing the grant). If one
   * refuses, the grant never becomes usable: it is denied (rule `activation`), `ended` with
   * reason `error` is published so the plugin can clean up, and the caller gets the error.
   */
  private async activate(record: GrantRecord, action: 'issue' | 'approve'): Promise<void> {
    try {
      await this.events.publish({ kind: 'activated', grant: toGrant(record) });
    } catch (e) {
      const reason = `the grant could not be activated: ${e instanceof Error ? e.message : String(e)}`;
      const failed: GrantRecord = { ...record, status: 'denied', pendingUntil: null };
      this.grants.set(record.id, failed);
      this.clearTimer(record.id);
      this.counters.denied++;
      await this.store.put(failed).catch(() => {});
      this.recorder.record({ type: 'grant.denied', grant: toGrant(failed), outcome: 'error', data: { rule: 'activation', action, reason } });
      await this.publishEnded(failed, 'error');
      throw isAirlockError(e) ? e : new AirlockError(ErrorCodes.UPSTREAM_FAILED, reason, { cause: e, rule: 'activation' });
    }
  }

  private publishEnded(record: GrantRecord, reason: GrantEndReason): Promise<void> {
    return this.events.publish({ kind: 'ended', grant: toGrant(record), reason }, this.options.onSubscriberError);
  }

  /** The pending grant an admin acts on; refuses unknown, non-pending and own grants. */
  private pendingRecord(id: string, admin: string, action: 'approve' | 'deny'): GrantRecord {
    const g = this.grants.get(id);
    if (!g) throw refusal(ErrorCodes.GRANT_NOT_FOUND, 'grant', `unknown grant ${id}`);
    const current = this.refresh(g);
    if (current.status !== 'pending') throw refusal(ErrorCodes.GRANT_STATE, 'state', `grant ${id} is ${current.status}, not pending`);
    // Four eyes: approval exists so that someone other than the requester decides.
    if (current.agent === admin) throw this.violation(admin, toGrant(current), action, `${admin} cannot ${action} its own grant`);
    return current;
  }

  private refuseRequest(agent: string, raw: unknown, code: ErrorCode, rule: string, reason: string): AirlockError {
    const req = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    this.counters.denied++;
    this.recorder.record({
      type: 'grant.denied',
      agent,
      resource: typeof req.resource === 'string' ? req.resource.slice(0, 128) : undefined,
      outcome: 'denied',
      data: { rule, reason, ...(typeof req.access === 'string' ? { access: req.access.slice(0, 64) } : {}), ...(typeof req.ttl === 'string' ? { ttl: req.ttl.slice(0, 32) } : {}) },
    });
    return refusal(code, rule, reason);
  }

  // ---- expiry ---------------------------------------------------------------------------

  /** Apply an expiry whose timer has not fired yet (clock vs. timer races). */
  private refresh(g: GrantRecord): GrantRecord {
    const now = Date.now();
    if (g.status === 'active' && g.expiresAt && Date.parse(g.expiresAt) <= now) return this.expire(g.id) ?? g;
    if (g.status === 'pending' && g.pendingUntil && Date.parse(g.pendingUntil) <= now) return this.expire(g.id) ?? g;
    return g;
  }

  private schedule(g: GrantRecord): void {
    this.clearTimer(g.id);
    const until = g.status === 'active' ? g.expiresAt : g.status === 'pending' ? g.pendingUntil : null;
    if (!until) return;
    const wait = Date.parse(until) - Date.now();
    if (wait <= 0) {
      queueMicrotask(() => this.expire(g.id));
      return;
    }
    const t = setTimeout(() => (wait > MAX_TIMER_MS ? this.schedule(g) : this.expire(g.id)), Math.min(wait, MAX_TIMER_MS));
    t.unref();
    this.timers.set(g.id, t);
  }

  private clearTimer(id: string): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  private expire(id: string): GrantRecord | undefined {
    const g = this.grants.get(id);
    if (!g || (g.status !== 'active' && g.status !== 'pending')) return g;
    const next: GrantRecord = { ...g, status: 'expired' };
    this.grants.set(id, next);
    this.clearTimer(id);
    void this.publishEnded(next, 'expired');
    this.counters.expired++;
    this.recorder.record({ type: 'grant.expired', grant: toGrant(next), outcome: 'ok', data: { wasPending: g.status === 'pending' } }).spooled.catch(() => {});
    this.store.put(next).catch(() => {});
    return next;
  }
}

export function toGrant(g: GrantRecord): Grant {
  return {
    id: g.id,
    agent: g.agent,
    resource: g.resource,
    resourceType: g.resourceType,
    access: g.access,
    scope: g.scope,
    task: g.task,
    status: g.status,
    createdAt: g.createdAt,
    expiresAt: g.expiresAt,
    ttlMs: g.ttlMs,
  };
}

function toPublic(g: GrantRecord): PublicGrant {
  const ttlS = Math.round(g.ttlMs / 1000);
  return {
    id: g.id,
    agent: g.agent,
    status: g.status,
    resource: g.resource,
    access: g.access,
    scope: g.scope,
    task: g.task,
    ttl: `${ttlS}s`,
    createdAt: g.createdAt,
    approvedAt: g.approvedAt,
    expiresAt: g.expiresAt,
    revokedAt: g.revokedAt,
  };
}
