/**
 * The grant lifecycle: request → policy → issue (or pending → approve | deny) → expire /
 * revoke. Every transition is decided by the shared store (compare-and-set, core/store/):
 * only the caller that wins records it, so with several replicas each transition has one
 * audit record. The in-memory map is this replica's view, fed by the store's change feed
 * (`onChange` applies other replicas' changes). When a grant becomes active or ends,
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
import type { ChangeOrigin, GrantTransition, SharedStore, StoreChange, TransitionOutcome } from '../store/types.ts';
import { applyTransition, isDue } from '../store/transitions.ts';
import type { GrantRecord } from './record.ts';
import type { GrantEvents } from './events.ts';
import { endReasonOf, isLive } from './status.ts';
import { makeVerifiers, newGrantId, newGrantSecret, utcDatesBetween } from './credentials.ts';

/** How long a pending grant waits for approval before it expires unused. */
const PENDING_WINDOW_MS = 24 * 3_600_000;
/** setTimeout cannot wait longer than this; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The backstop for expiry timers lost to a crash (any replica may win a due grant). */
const SWEEP_EVERY_MS = 30_000;
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
  store: SharedStore;
  recorder: Recorder;
  /** Where the service publishes `activated` / `ended`. */
  events: GrantEvents;
  /** `connect` for a new grant (the started plugin of its type answers). */
  connectInfo: (grant: Grant, secret: string) => ConnectInfo;
  auditAvailable: () => boolean;
  /** Failures of asynchronous `ended` subscribers (logged by the hub). */
  onSubscriberError?: ((e: unknown) => void) | undefined;
  /**
   * Why new grants must be refused right now (the store is unreachable or the view stale),
   * or undefined. The hub's watchdog answers.
   */
  storeRefusal?: (() => AirlockError | undefined) | undefined;
  /** Failures of background store work (expiry transitions, the sweep), for the log. */
  onStoreError?: ((e: unknown) => void) | undefined;
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
  private readonly store: SharedStore;
  /** Own calls whose outcome is unknown (the store failed after maybe committing): applied when the feed shows them. */
  private readonly uncertain = new Set<string>();
  /** Changes that arrived before the snapshot was applied. */
  private early: StoreChange[] | undefined = [];
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly recorder: Recorder;
  private readonly events: GrantEvents;

  constructor(private readonly options: GrantServiceOptions) {
    ({ config: this.config, plugins: this.plugins, store: this.store, recorder: this.recorder, events: this.events } = options);
  }

  /** Open the store: the snapshot fills the view, the feed keeps it current. */
  async load(): Promise<void> {
    const snap = await this.store.open({ onChange: (c) => this.onChange(c) });
    for (const g of snap.grants) {
      this.grants.set(g.id, g);
      this.schedule(g);
    }
    const early = this.early ?? [];
    this.early = undefined;
    for (const c of early) this.onChange(c);
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.sweepTimer.unref();
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
    await this.persistNew(record);
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

  /**
   * The store decides first (another replica may be approving, denying or revoking the same
   * grant); only the winner prepares the grant (onGrantActive), records `grant.approved`
   * and reports it active.
   */
  async approve(id: string, admin: string): Promise<PublicGrant> {
    this.pendingRecord(id, admin, 'approve');
    const next = await this.decideTransition(id, { kind: 'approve', by: admin, at: Date.now() });
    // A revocation made right after the approval may already be in the view (the feed can
    // be faster than this call's answer): then the grant is not prepared, only recorded.
    const current = this.setView(next);
    if (current === next) {
      await this.activate(next, 'approve');
      this.schedule(next);
    }
    this.counters.approved++;
    await this.recorder.record({ type: 'grant.approved', grant: toGrant(next), outcome: 'ok', data: { by: admin, expiresAt: next.expiresAt } }).durable;
    return toPublic(this.grants.get(id) ?? next);
  }

  /** An admin (never the requester) turns a pending grant down, saying why. */
  async deny(id: string, admin: string, reason: string): Promise<PublicGrant> {
    this.pendingRecord(id, admin, 'deny');
    const next = await this.decideTransition(id, { kind: 'deny', by: admin, reason, at: Date.now() });
    this.grants.set(id, next);
    this.clearTimer(id);
    const ended = this.publishEnded(next, 'denied');
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
    const refused = this.options.storeRefusal?.();
    if (refused) throw refused;
    const transition: GrantTransition = { kind: 'revoke', by, at: Date.now() };
    const projected = applyTransition(current, transition)!;
    this.grants.set(id, projected);
    this.clearTimer(id);
    // Published before the store decides: live sessions here are cut now, even if the
    // store is slow or another replica's revocation wins (they stay cut either way).
    const ended = this.publishEnded(projected, 'revoked');
    let next: GrantRecord;
    try {
      next = await this.decideTransition(id, transition);
    } catch (e) {
      if (isAirlockError(e, ErrorCodes.STORE_UNAVAILABLE)) this.grants.set(id, current);
      await ended;
      throw e;
    }
    this.setView(next);
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
    clearInterval(this.sweepTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** The store, for the hub's watchdog, /healthz and the local issuer key. */
  get sharedStore(): SharedStore {
    return this.store;
  }

  // ---- the store ------------------------------------------------------------------------

  /** Write a new grant; if the store fails, the grant never existed for the caller. */
  private async persistNew(record: GrantRecord): Promise<void> {
    try {
      await this.store.createGrant(record);
    } catch (e) {
      this.grants.delete(record.id);
      this.clearTimer(record.id);
      // The commit may have gone through: the feed will show it, and it is then revoked.
      if (isAirlockError(e, ErrorCodes.STORE_UNAVAILABLE)) this.uncertain.add(record.id);
      if (record.status === 'active') await this.publishEnded({ ...record, status: 'denied' }, 'error');
      throw e;
    }
  }

  /**
   * Compare-and-set in the store: the new record when this caller won; 404 / 409 when the
   * grant is unknown or another change got there first (the view takes the winner's state).
   */
  private async decideTransition(id: string, t: GrantTransition): Promise<GrantRecord> {
    let outcome: TransitionOutcome;
    try {
      outcome = await this.store.transition(id, t);
    } catch (e) {
      if (isAirlockError(e, ErrorCodes.STORE_UNAVAILABLE)) this.uncertain.add(id);
      throw e;
    }
    if (outcome.won) return outcome.record;
    if (outcome.reason === 'unknown' || !outcome.record) throw refusal(ErrorCodes.GRANT_NOT_FOUND, 'grant', `unknown grant ${id}`);
    this.applyRemote(outcome.record);
    throw refusal(ErrorCodes.GRANT_STATE, 'state', `grant ${id} is ${outcome.record.status}, not ${t.kind === 'revoke' ? 'active or pending' : 'pending'}`);
  }

  /** One change of the feed (every replica's, in revision order). */
  private onChange(change: StoreChange): void {
    if (this.early) {
      this.early.push(change);
      return;
    }
    if (change.kind === 'state') return;
    if (change.kind === 'reset') {
      this.applyReset(change.grants);
      return;
    }
    if (change.origin === this.store.replicaId) {
      // Applied by the call that made it, unless that call failed not knowing it committed.
      if (!this.uncertain.delete(change.grant.id)) return;
      this.adoptUncertain(change.change, change.grant);
      return;
    }
    this.applyRemote(change.grant);
  }

  /**
   * Another replica's state for a grant becomes this replica's view: timers follow, and
   * a grant that became active or ended is published (so this replica's sessions of it are
   * cut). No audit record: the replica that won the change wrote it.
   */
  private applyRemote(next: GrantRecord): void {
    const before = this.grants.get(next.id);
    if (this.setView(next) !== next) return;
    this.schedule(next);
    const wasLive = before !== undefined && isLive(before.status);
    if (isLive(next.status)) {
      if (next.status === 'active' && before?.status !== 'active') void this.events.publish({ kind: 'activated', grant: toGrant(next), remote: true }).catch((e: unknown) => this.options.onSubscriberError?.(e));
      return;
    }
    if (wasLive) void this.publishEnded(next, endReasonOf(next.status));
  }

  /**
   * Put a record in the view unless the view already holds the grant's end: an ended grant
   * never lives again in the store, so a live record arriving after the end is older news
   * (an own call's answer overtaken by the feed, or the other way round). Returns what the
   * view holds now.
   */
  private setView(next: GrantRecord): GrantRecord {
    const held = this.grants.get(next.id);
    if (held && !isLive(held.status) && isLive(next.status)) return held;
    this.grants.set(next.id, next);
    return next;
  }

  /** The history behind this replica's cursor was pruned: the store sends the whole view. */
  private applyReset(grants: readonly GrantRecord[]): void {
    const seen = new Set<string>();
    for (const g of grants) {
      seen.add(g.id);
      this.applyRemote(g);
    }
    for (const [id, g] of [...this.grants]) {
      if (seen.has(id)) continue;
      this.grants.delete(id);
      this.clearTimer(id);
      if (isLive(g.status)) void this.publishEnded({ ...g, status: 'expired' }, 'expired');
    }
  }

  /** Our own change whose caller was told the store failed: apply it now, with its record. */
  private adoptUncertain(kind: ChangeOrigin, g: GrantRecord): void {
    const before = this.grants.get(g.id);
    this.applyRemote(g);
    const grant = toGrant(g);
    switch (kind) {
      case 'created':
        // The requester got a 503 and no credentials: the grant must not stay usable.
        void this.revoke(g.id, 'airlock').catch((e: unknown) => this.options.onStoreError?.(e));
        return;
      case 'approve':
        this.recorder.record({ type: 'grant.approved', grant, outcome: 'ok', data: { by: g.approvedBy, expiresAt: g.expiresAt, late: true } });
        return;
      case 'revoke':
        this.recorder.record({ type: 'grant.revoked', grant, outcome: 'ok', data: { by: g.revokedBy, late: true } });
        return;
      case 'deny':
      case 'fail':
        this.recorder.record({ type: 'grant.denied', grant, outcome: 'denied', data: { rule: kind === 'deny' ? 'admin' : 'activation', reason: g.denyReason, by: g.deniedBy, late: true } });
        return;
      case 'expire':
        this.recordExpired(g, before?.status === 'pending');
        return;
    }
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
    const refused = this.options.storeRefusal?.();
    if (refused) throw this.refuseRequest(agent, req, ErrorCodes.STORE_UNAVAILABLE, 'store', refused.message);
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
      const failed: GrantRecord = applyTransition(record, { kind: 'fail', reason, at: Date.now() }) ?? { ...record, status: 'denied', pendingUntil: null };
      this.grants.set(record.id, failed);
      this.clearTimer(record.id);
      this.counters.denied++;
      // A new grant is written as denied; an approved one was already active in the store.
      await (action === 'issue' ? this.store.createGrant(failed) : this.store.transition(record.id, { kind: 'fail', reason, at: Date.now() })).catch((err: unknown) => this.options.onStoreError?.(err));
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
    if (isLive(g.status) && isDue(g, Date.now())) return this.expire(g.id) ?? g;
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

  /**
   * The deadline passed: the grant is expired in this replica's view at once (no use is
   * allowed past it, and this replica's sessions are cut), and the store decides who
   * records it: every replica's timer tries, exactly one wins and writes `grant.expired`.
   */
  private expire(id: string): GrantRecord | undefined {
    const g = this.grants.get(id);
    if (!g || !isLive(g.status)) return g;
    const now = Date.now();
    if (!isDue(g, now)) {
      // The timer runs on the monotonic clock, the deadline is wall-clock time: a timer can
      // fire a little before the wall clock reaches it (or the clock was set back). Wait the
      // rest, rather than leave the grant live until the sweep, up to SWEEP_EVERY_MS later.
      this.schedule(g);
      return g;
    }
    const next: GrantRecord = { ...g, status: 'expired' };
    this.grants.set(id, next);
    this.clearTimer(id);
    void this.publishEnded(next, 'expired');
    // One process on the file store is the only replica: the expiry is decided here and now,
    // and recorded at once as it always was.
    const sole = this.store.type === 'file';
    if (sole) this.recordExpired(next, g.status === 'pending');
    this.store.transition(id, { kind: 'expire', at: now }).then(
      (outcome) => {
        if (outcome.won && !sole) this.recordExpired(outcome.record, g.status === 'pending');
        else if (outcome.record && outcome.record.status !== 'expired' && !isLive(outcome.record.status)) this.grants.set(id, outcome.record);
      },
      // Unreachable: the sweep (here or on another replica) decides it later.
      (e: unknown) => this.options.onStoreError?.(e),
    );
    return next;
  }

  private recordExpired(g: GrantRecord, wasPending: boolean): void {
    this.counters.expired++;
    this.recorder.record({ type: 'grant.expired', grant: toGrant(g), outcome: 'ok', data: { wasPending } }).spooled.catch(() => {});
  }

  /** The backstop: grants past their deadline that no timer expired (a replica crashed). */
  private async sweep(): Promise<void> {
    let won: GrantRecord[];
    try {
      won = await this.store.sweepExpired(Date.now());
    } catch (e) {
      this.options.onStoreError?.(e);
      return;
    }
    for (const g of won) {
      const before = this.grants.get(g.id);
      this.grants.set(g.id, g);
      this.clearTimer(g.id);
      if (before && isLive(before.status)) void this.publishEnded(g, 'expired');
      this.recordExpired(g, g.pendingUntil !== null && g.approvedAt === null);
    }
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
