/**
 * The grant lifecycle: request → policy → issue (or pending → approve) → expire / revoke.
 * Every transition is persisted, recorded, and — when a grant ends — closes its live
 * sessions through the registry within the same tick.
 */
import { z } from 'zod';
import { AirlockError, ErrorCodes, isAirlockError } from '../errors.ts';
import type { ConnectInfo, GatewayInfo, Grant, RegisteredPlugin } from '../plugin.ts';
import type { AirlockConfig } from '../config/schema.ts';
import { parseDuration } from '../config/duration.ts';
import { evaluatePolicy } from '../policy/evaluate.ts';
import type { Recorder } from '../gateway/recorder.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import type { GrantStore } from './store.ts';
import type { GrantRecord } from './record.ts';
import { makeVerifiers, newGrantId, newGrantSecret, utcDatesBetween } from './credentials.ts';

/** How long a pending grant waits for approval before it expires unused. */
const PENDING_WINDOW_MS = 24 * 3_600_000;
/** setTimeout cannot wait longer than this; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const grantRequestSchema = z.strictObject({
  resource: z.string().min(1).max(128),
  access: z.string().min(1).max(64),
  scope: z.record(z.string(), z.unknown()).optional(),
  ttl: z.string().max(32),
  task: z.string().trim().min(1, 'task is required: say why the grant is needed').max(2000),
});
export type GrantRequest = z.infer<typeof grantRequestSchema>;

export interface IssuedGrant {
  status: 201 | 202;
  body: PublicGrant & { secret: string; connect: ConnectInfo };
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

/** A refused request: HTTP status, the rule that decided, and a reason for the agent. */
export class GrantRefusal extends Error {
  constructor(
    readonly httpStatus: 400 | 403 | 404 | 409 | 503,
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

export class GrantService {
  private readonly grants = new Map<string, GrantRecord>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private sessions: SessionRegistry | undefined;
  private counters = { issued: 0, pending: 0, denied: 0, approved: 0, revoked: 0, expired: 0 };

  constructor(
    private readonly config: AirlockConfig,
    private readonly plugins: ReadonlyMap<string, RegisteredPlugin>,
    private readonly store: GrantStore,
    private readonly recorder: Recorder,
    private readonly gateway: () => GatewayInfo,
    private readonly auditAvailable: () => boolean,
  ) {}

  attachSessions(sessions: SessionRegistry): void {
    this.sessions = sessions;
  }

  private readonly endedListeners: Array<(grantId: string) => void> = [];

  /** Called once a grant is revoked or expires (drop caches keyed by it, e.g. role sessions). */
  onEnded(listener: (grantId: string) => void): void {
    this.endedListeners.push(listener);
  }

  private notifyEnded(id: string): void {
    for (const l of this.endedListeners) {
      try {
        l(id);
      } catch {
        // A cache that fails to drop an entry must not stop the grant from ending.
      }
    }
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

  /** Throws unless the grant exists and is active right now (timers aside). */
  requireActive(id: string): Grant {
    const g = this.grants.get(id);
    if (!g) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'unknown grant');
    const current = this.refresh(g);
    switch (current.status) {
      case 'active':
        return toGrant(current);
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

  publicView(id: string): PublicGrant | undefined {
    const g = this.grants.get(id);
    return g && toPublic(this.refresh(g));
  }

  list(agent?: string): PublicGrant[] {
    return [...this.grants.values()].filter((g) => agent === undefined || g.agent === agent).map((g) => toPublic(this.refresh(g)));
  }

  // ---- transitions --------------------------------------------------------------------

  async request(agent: string, raw: unknown): Promise<IssuedGrant> {
    const parsed = grantRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
      const message = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : issue.message;
      throw this.refuseRequest(agent, raw, 400, 'request', `${where}${message}`);
    }
    const req = parsed.data;
    this.recorder.record({ type: 'grant.requested', agent, resource: req.resource, outcome: 'ok', data: { access: req.access, ttl: req.ttl, task: req.task, ...(req.scope ? { scope: req.scope } : {}) } });

    const ttlMs = parseDuration(req.ttl);
    if (ttlMs === undefined) throw this.refuseRequest(agent, req, 400, 'ttl', `ttl "${req.ttl}" is not a duration like 90s, 15m, 1h`);
    const resource = this.config.resources[req.resource];
    if (!resource) throw this.refuseRequest(agent, req, 403, 'resource', `unknown resource "${req.resource}"`);
    const plugin = this.plugins.get(resource.type);
    if (!plugin) throw this.refuseRequest(agent, req, 403, 'resource', `resource "${req.resource}" has no plugin`);
    const levels = plugin.accessLevels(resource);
    if (!levels.includes(req.access)) {
      throw this.refuseRequest(agent, req, 403, 'access', `resource "${req.resource}" has no access level "${req.access}" (levels: ${levels.join(', ')})`);
    }
    const decision = evaluatePolicy(this.config.policies, { agent, resource: req.resource, access: req.access, ttlMs });
    if (!decision.allowed) throw this.refuseRequest(agent, req, 403, decision.rule, decision.reason);

    let scope: Record<string, unknown>;
    try {
      scope = plugin.resolveScope(resource, req.access, req.scope);
    } catch (e) {
      if (isAirlockError(e)) throw this.refuseRequest(agent, req, e.code === ErrorCodes.OUT_OF_SCOPE ? 403 : 400, 'scope', e.message);
      throw e;
    }
    if (!this.auditAvailable()) throw this.refuseRequest(agent, req, 503, 'audit', 'audit spool is full: grants are refused until the audit sinks catch up');

    const now = Date.now();
    const pending = decision.approval === 'required';
    const id = newGrantId();
    const secret = newGrantSecret();
    // SigV4 keys for every date the grant could be used on (pending grants may be approved later).
    const lastUse = now + (pending ? PENDING_WINDOW_MS : 0) + ttlMs;
    const kinds = new Set(plugin.credentials ?? (['scram', 'sigv4', 'bearer'] as const));
    const verifiers = await makeVerifiers(secret, kinds, utcDatesBetween(now - 300_000, lastUse + 300_000));
    const record: GrantRecord = {
      id,
      agent,
      resource: req.resource,
      resourceType: resource.type,
      access: req.access,
      scope,
      task: req.task,
      status: pending ? 'pending' : 'active',
      createdAt: new Date(now).toISOString(),
      approvedAt: null,
      approvedBy: null,
      expiresAt: pending ? null : new Date(now + ttlMs).toISOString(),
      pendingUntil: pending ? new Date(now + PENDING_WINDOW_MS).toISOString() : null,
      ttlMs,
      revokedAt: null,
      revokedBy: null,
      policy: decision.policyIndex,
      verifiers,
    };
    await this.store.put(record);
    this.grants.set(id, record);
    this.schedule(record);
    const grant = toGrant(record);
    const receipt = this.recorder.record({
      type: pending ? 'grant.pending' : 'grant.issued',
      grant,
      outcome: 'ok',
      data: { access: req.access, scope, ttl: req.ttl, expiresAt: record.expiresAt, policy: decision.policyIndex },
    });
    await receipt.durable;
    pending ? this.counters.pending++ : this.counters.issued++;
    const connect = plugin.connectInfo({ resourceName: req.resource, resource, grant, secret, gateway: this.gateway() });
    return { status: pending ? 202 : 201, body: { ...toPublic(record), secret, connect } };
  }

  async approve(id: string, admin: string): Promise<PublicGrant> {
    const g = this.grants.get(id);
    if (!g) throw new GrantRefusal(404, 'grant', `unknown grant ${id}`);
    const current = this.refresh(g);
    if (current.status !== 'pending') throw new GrantRefusal(409, 'state', `grant ${id} is ${current.status}, not pending`);
    // Four eyes: approval exists so that someone other than the requester agrees.
    if (current.agent === admin) throw this.violation(admin, toGrant(current), 'approve', `${admin} cannot approve its own grant`);
    const now = Date.now();
    const next: GrantRecord = { ...current, status: 'active', approvedAt: new Date(now).toISOString(), approvedBy: admin, expiresAt: new Date(now + current.ttlMs).toISOString(), pendingUntil: null };
    await this.store.put(next);
    this.grants.set(id, next);
    this.schedule(next);
    this.counters.approved++;
    await this.recorder.record({ type: 'grant.approved', grant: toGrant(next), outcome: 'ok', data: { by: admin, expiresAt: next.expiresAt } }).durable;
    return toPublic(next);
  }

  async revoke(id: string, by: string): Promise<PublicGrant> {
    const g = this.grants.get(id);
    if (!g) throw new GrantRefusal(404, 'grant', `unknown grant ${id}`);
    const current = this.refresh(g);
    if (current.status !== 'active' && current.status !== 'pending') throw new GrantRefusal(409, 'state', `grant ${id} is already ${current.status}`);
    const next: GrantRecord = { ...current, status: 'revoked', revokedAt: new Date().toISOString(), revokedBy: by };
    this.grants.set(id, next);
    this.clearTimer(id);
    // Close live sessions first: revocation must bite even if persisting is slow.
    const closed = this.sessions?.closeGrant(id, 'revoked', `airlock grant ${id} was revoked`) ?? 0;
    this.notifyEnded(id);
    await this.store.put(next);
    this.counters.revoked++;
    await this.recorder.record({ type: 'grant.revoked', grant: toGrant(next), outcome: 'ok', data: { by, sessionsClosed: closed } }).durable;
    return toPublic(next);
  }

  // merge: contract adds the full version (GrantService.deny, POST /v1/grants/:id/deny).
  /** An admin refuses a pending grant; four eyes: never the requester itself. */
  async deny(id: string, admin: string, reason: string): Promise<PublicGrant> {
    const g = this.grants.get(id);
    if (!g) throw new GrantRefusal(404, 'grant', `unknown grant ${id}`);
    const current = this.refresh(g);
    if (current.status !== 'pending') throw new GrantRefusal(409, 'state', `grant ${id} is ${current.status}, not pending`);
    if (current.agent === admin) throw this.violation(admin, toGrant(current), 'deny', `${admin} cannot decide on its own grant`);
    const why = reason.trim().slice(0, 2000);
    if (!why) throw new GrantRefusal(400, 'reason', 'a reason is required to deny a grant');
    const next: GrantRecord = { ...current, status: 'denied', pendingUntil: null };
    this.grants.set(id, next);
    this.clearTimer(id);
    this.notifyEnded(id);
    await this.store.put(next);
    this.counters.denied++;
    await this.recorder.record({ type: 'grant.denied', grant: toGrant(next), outcome: 'denied', data: { by: admin, reason: why, rule: 'admin' } }).durable;
    return toPublic(next);
  }

  /** A refused control action (approve without rights, self-approval): recorded, then thrown. */
  violation(agent: string, grant: Grant | undefined, action: string, reason: string): GrantRefusal {
    this.recorder.record({ type: 'policy.violation', agent, resource: grant?.resource, outcome: 'denied', data: { action, reason, ...(grant ? { grantId: grant.id } : {}) } });
    return new GrantRefusal(403, action, reason);
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  // ---- internals ----------------------------------------------------------------------

  private refuseRequest(agent: string, raw: unknown, status: GrantRefusal['httpStatus'], rule: string, reason: string): GrantRefusal {
    const req = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    this.counters.denied++;
    this.recorder.record({
      type: 'grant.denied',
      agent,
      resource: typeof req.resource === 'string' ? req.resource.slice(0, 128) : undefined,
      outcome: 'denied',
      data: { rule, reason, ...(typeof req.access === 'string' ? { access: req.access.slice(0, 64) } : {}), ...(typeof req.ttl === 'string' ? { ttl: req.ttl.slice(0, 32) } : {}) },
    });
    return new GrantRefusal(status, rule, reason);
  }

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
    const closed = this.sessions?.closeGrant(id, 'expired', `airlock grant ${id} expired`) ?? 0;
    this.notifyEnded(id);
    this.counters.expired++;
    this.recorder.record({ type: 'grant.expired', grant: toGrant(next), outcome: 'ok', data: { sessionsClosed: closed, wasPending: g.status === 'pending' } }).spooled.catch(() => {});
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
