/**
 * The two extension points of airlock: a resource plugin and an audit sink.
 *
 * A plugin (plugins/<type>/index.ts) exports one `PluginDefinition`. It sees the gateway
 * only through the `PluginContext` handed to `start`: authenticate a grant credential,
 * open a session the core can close, record audit events, and reach AWS with airlock's
 * own identity. A plugin imports nothing from core but this file, `errors.ts` and the
 * helpers re-exported by `core/public.ts`.
 *
 * A sink (audit-sinks/<type>/index.ts) exports one `SinkDefinition`. It receives batches
 * of finished audit records from the spool, in order, and knows nothing of plugins.
 */
import type { Hono } from 'hono';
import type { z } from 'zod';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { HttpRequest } from '@smithy/protocol-http';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { ErrorCode } from './errors.ts';
import type { JsonValue } from './store/types.ts';

// ---------------------------------------------------------------------------------------
// Grants as plugins see them
// ---------------------------------------------------------------------------------------

export type GrantStatus = 'pending' | 'active' | 'expired' | 'revoked' | 'denied';

/** A scope as the core stores it (JSON object); each plugin sees its own parsed type. */
export type AnyScope = Readonly<Record<string, unknown>>;

/** A grant without its secret. `scope` is the effective scope, already narrowed and parsed. */
export interface Grant<Scope = AnyScope> {
  readonly id: string;
  /** `issuer-name:subject`, e.g. `local:report-bot`. */
  readonly agent: string;
  readonly resource: string;
  readonly resourceType: string;
  readonly access: string;
  readonly scope: Scope;
  readonly task: string;
  readonly status: GrantStatus;
  readonly createdAt: string;
  /** Null while pending: the TTL counts from approval. */
  readonly expiresAt: string | null;
  readonly ttlMs: number;
}

/** Why a grant stopped being usable (the `ended` grant event, `onGrantEnded`). */
export type GrantEndReason = 'expired' | 'revoked' | 'denied' | 'error';

/** The SCRAM-SHA-256 verifier stored for a grant (RFC 5802/7677); never the password. */
export interface ScramVerifier {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** What a plugin can ask about grants. Every method checks the plugin's resource type. */
export interface GrantAuthenticator<Scope = AnyScope> {
  /**
   * Look up a grant by id for a challenge-response protocol. Throws AirlockError
   * GRANT_UNKNOWN or WRONG_RESOURCE; returns the grant whatever its status so the plugin
   * can finish the exchange before refusing (do not reveal which grants exist: on
   * GRANT_UNKNOWN run the exchange against `decoyScram()` and fail at the end).
   */
  scram(grantId: string): { grant: Grant<Scope>; verifier: ScramVerifier };
  /** A verifier that matches no password, for unknown users. */
  decoyScram(grantId: string): ScramVerifier;
  /** Verify an opaque bearer credential (`connect` of eks). Throws on any failure. */
  bearer(token: string): Grant<Scope>;
  /**
   * The SigV4 signing key for a grant-issued access key on one date/region/service
   * (derived from the stored per-date key: the secret itself is not kept).
   * Throws GRANT_UNKNOWN / WRONG_RESOURCE; the caller checks status with `requireActive`.
   */
  sigv4SigningKey(grantId: string, date: string, region: string, service: string): { grant: Grant<Scope>; key: Buffer };
  /** Re-read a grant and throw GRANT_PENDING / EXPIRED / REVOKED / DENIED unless active. */
  requireActive(grantId: string): Grant<Scope>;
  /** Current state of a grant, or undefined. */
  get(grantId: string): Grant<Scope> | undefined;
  /** Every grant of this plugin's type that is active now (start-up sweeps). */
  listActive(): Grant<Scope>[];
}

// ---------------------------------------------------------------------------------------
// Audit as meaning-level calls
// ---------------------------------------------------------------------------------------

export type AuditOutcome = 'ok' | 'denied' | 'error';

/**
 * Returned by every record call. `spooled` resolves once the record is in the local spool
 * (kernel page cache): forward the operation upstream only after it. `durable` resolves once
 * the record survives a power failure in `strict` mode (equal to `spooled` in `buffered`):
 * release the operation's result to the client only after it. Both reject when the audit
 * pipeline cannot take the record; the operation must then fail closed.
 * A request path should use `AuditRecorder.exchange`, which does this once for everyone.
 */
export interface AuditReceipt {
  readonly seq: number;
  readonly spooled: Promise<void>;
  readonly durable: Promise<void>;
}

export interface AuditEventInput {
  /** e.g. `pg.query`, `aws.request`, `k8s.request`, `ssm.command`, `policy.violation`. */
  type: string;
  /** Fills agent, grant, resource and task. */
  grant?: Grant<unknown> | undefined;
  session?: string | undefined;
  /** When there is no grant (e.g. `auth.failed` for an unknown credential). */
  agent?: string | undefined;
  resource?: string | undefined;
  data?: Record<string, unknown> | undefined;
  outcome: AuditOutcome;
}

export interface AuthFailedInput {
  resource?: string | undefined;
  /**
   * The credential id the client claimed (a grant id, an access key id, a user name).
   * Recorded as is only when it looks like a grant id; anything else is recorded as a
   * short hash (`h:<12 hex>`), so a secret typed into the user field never lands in clear.
   */
  claimedId?: string | undefined;
  source?: string | undefined;
  code: ErrorCode;
  reason: string;
  data?: Record<string, unknown> | undefined;
}

/** The request of one audited exchange (request record → forward → outcome record). */
export interface ExchangeEvent {
  /** Type of the request record, e.g. `aws.request`, `k8s.request`, `pg.query`. */
  type: string;
  data: Record<string, unknown>;
  /** Type of the outcome record (default: `x.request` → `x.response`, else `<type>.result`). */
  resultType?: string | undefined;
}

/** One audited exchange (request record → forward → outcome record). */
export interface AuditExchange {
  /** Seq of the request record once written (undefined before). */
  readonly seq: number | undefined;
  /**
   * Write the request record (outcome ok) and resolve once it is spooled: forward only then.
   * Rejects AirlockError AUDIT_UNAVAILABLE ("airlock cannot record this request: audit unavailable").
   */
  ready(): Promise<void>;
  /**
   * Write the outcome record (e.g. pg.result / aws.response / k8s.response, with
   * `requestSeq`), resolve once the request record is durable and the outcome spooled:
   * release the result to the client only then. Rejects AUDIT_UNAVAILABLE.
   */
  finish(outcome: AuditOutcome, data?: Record<string, unknown>): Promise<void>;
  /**
   * Resolve once the request record is durable (`strict`; spooled in `buffered`), for a stream
   * whose results reach the client before the outcome is known (Postgres rows): release them
   * only then. Call after `ready()`. Rejects AUDIT_UNAVAILABLE.
   */
  durable(): Promise<void>;
  /**
   * Refuse the request: before `ready()`, write the request record itself with outcome
   * `denied` (same data as an allowed one, plus code and reason, then `data`); after it,
   * write the outcome record so. Outcome `error` for airlock's own failures (INTERNAL,
   * UPSTREAM_FAILED, AUDIT_UNAVAILABLE, STORE_UNAVAILABLE). Resolves once durable. Never throws.
   */
  refuse(code: ErrorCode, reason: string, data?: Record<string, unknown>): Promise<void>;
}

export interface AuditRecorder {
  record(event: AuditEventInput): AuditReceipt;
  /**
   * `auth.failed`, with the claimed credential id (never the secret) and the source. Counts
   * against the source's address in the gateway's one failure limiter; repeated failures
   * from one address are gathered into `auth.failed.summary` records (the receipt of one
   * not recorded in full resolves at once).
   */
  authFailed(input: AuthFailedInput): AuditReceipt;
  /**
   * A credential FAILED to verify: record it as `authFailed` does and say whether the
   * source is past its failure budget, in which case answer 429 (RATE_LIMITED) instead of
   * 401; the record then has code RATE_LIMITED and `failure` the original code. Call it
   * only after verification failed: a credential that verifies is never refused.
   */
  authRefused(input: AuthFailedInput): { limited: boolean; receipt: AuditReceipt };
  /** Start one audited exchange for a grant (stateless request) or in a session (stream). */
  exchange(on: Grant<unknown> | Session<unknown>, event: ExchangeEvent): AuditExchange;
  /**
   * Call `fn` synchronously right after every record written so far is in the spool (the one
   * write at the end of this event-loop turn that carries them all), or at once if it already
   * is; with AirlockError AUDIT_UNAVAILABLE when the spool cannot take them. For a stream that
   * forwards in the same turn without a promise per request: write the turn's request records
   * (`ready()` called, its promise not awaited; an exchange whose `seq` stays undefined was
   * not written), hold the bytes, and forward them from `fn` only when it has no error.
   */
  whenSpooled(fn: (error: Error | undefined) => void): void;
}

// ---------------------------------------------------------------------------------------
// Sessions: live connections or streams the core can close on expiry or revocation
// ---------------------------------------------------------------------------------------

export type CloseReason = 'client' | 'expired' | 'revoked' | 'error' | 'policy' | 'shutdown';

export type SessionCloser = (reason: CloseReason, message: string) => void;

export interface SessionOptions {
  /** Remote address, for the record. */
  source?: string | undefined;
  /** Extra data for `session.opened`. */
  data?: Record<string, unknown> | undefined;
  /**
   * Called once when the core ends the session (expiry, revocation, shutdown). The plugin
   * tells its client why, then tears down both sides. Must not throw. Same as calling
   * `attachCloser` right after `open`.
   */
  onClose?: ((reason: CloseReason, message: string) => void | Promise<void>) | undefined;
}

export interface Session<Scope = AnyScope> {
  readonly id: string;
  readonly grant: Grant<Scope>;
  readonly openedAt: number;
  /** Record an event in this session (fills grant and session fields). */
  record(type: string, data: Record<string, unknown>, outcome: AuditOutcome): AuditReceipt;
  /**
   * Register (another) closer: called once when the core ends the session. A cut the core
   * made before the closer was attached is applied to it at once.
   */
  attachCloser(fn: SessionCloser): void;
  /** The core's cut, once it happened (reason and the message for the client). */
  readonly cut: { readonly reason: CloseReason; readonly message: string } | undefined;
  /** Aborted when the core cuts the session (hand it to upstream calls). */
  readonly signal: AbortSignal;
  /**
   * End the session from the plugin's side (client went away, error). Records
   * `session.closed` once; calling again is a no-op. Does not call the closers.
   */
  end(reason: CloseReason, data?: Record<string, unknown>): void;
  readonly closed: boolean;
}

export interface SessionOpener<Scope = AnyScope> {
  /**
   * Open a session for an active grant: records `session.opened` and registers `onClose`.
   * Throws AirlockError (grant no longer active; SESSION_LIMIT beyond the policy's
   * `maxSessions`; AUDIT_UNAVAILABLE when the spool is full).
   */
  open(grant: Grant<Scope>, options: SessionOptions): Session<Scope>;
}

// ---------------------------------------------------------------------------------------
// AWS with airlock's own identity
// ---------------------------------------------------------------------------------------

export interface InboundAwsRequest {
  method: string;
  /** Path without query, as received (percent-encoded). */
  path: string;
  /** Raw query string without `?` ('' when none). */
  query: string;
  /** Lower-case header names. Multi-valued headers joined with ','. */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface VerifiedAwsRequest<Scope = AnyScope> {
  grant: Grant<Scope>;
  region: string;
  service: string;
  accessKeyId: string;
}

export interface AwsCredentialRequest {
  /** Resource name: per-resource `roleArn` is assumed when set. */
  resource: string;
  /** With `roleArn`: RoleSessionName = grant id, SourceIdentity = agent; cached per grant. */
  grant?: Grant<unknown> | undefined;
  /** IAM session policy narrowing the assumed role to the grant's scope. */
  sessionPolicy?: Record<string, unknown> | undefined;
}

/** How the core reaches AWS for one resource (from `PluginDefinition.awsBinding`). */
export interface AwsBinding {
  /** The resource's region (default `aws.region`). */
  readonly region?: string | undefined;
  /** A role assumed per grant. */
  readonly roleArn?: string | undefined;
}

export interface AwsContext<Scope = AnyScope> {
  /** Default region of the gateway (`aws.region`). */
  readonly region: string;
  /** `aws.endpoints[service]` or the public endpoint for that service and region. */
  endpoint(service: string, region: string): string;
  /** airlock's credentials: the provider chain, or a role assumed for this grant. */
  credentials(request: AwsCredentialRequest): Promise<AwsCredentialIdentity>;
  /** SigV4-sign a request (header signing). */
  sign(request: HttpRequest, opts: { service: string; region: string; credentials: AwsCredentialIdentity }): Promise<HttpRequest>;
  /** SigV4 query presign (RDS IAM token, EKS token). `expiresIn` in seconds. */
  presign(
    request: HttpRequest,
    opts: { service: string; region: string; credentials: AwsCredentialIdentity; expiresIn: number; signingDate?: Date },
  ): Promise<HttpRequest>;
  /**
   * Verify a request signed with a grant-issued access key (SigV4 header form): credential
   * scope, X-Amz-Date within 5 minutes, `host`/`x-amz-date` signed, payload hash, signature
   * in constant time, grant active and of this plugin's type. Throws AirlockError.
   */
  verifyInbound(request: InboundAwsRequest, expect: { service: string }): Promise<VerifiedAwsRequest<Scope>>;
}

// ---------------------------------------------------------------------------------------
// What the core hands a plugin
// ---------------------------------------------------------------------------------------

export interface GatewayInfo {
  /** e.g. http://127.0.0.1:8080 (https when gateway.http.tls is set); bound before plugins start. */
  readonly publicUrl: string;
  /** PEM of the HTTP listener's certificate when TLS is on (for kubeconfig CA data). */
  readonly httpCaPem: string | undefined;
  readonly dataDir: string;
  readonly gatewayId: string;
  /** TLS material for protocol listeners (configured or generated self-signed). */
  tls(): Promise<SecureContextOptions & { certPem: string }>;
}

/**
 * Small key/value state of one plugin, shared by every replica of the gateway (the store's
 * plugin state, namespaced by the plugin's type; with the file store, kept in dataDir). For
 * what another replica must know to serve a grant made here: the SSM command ledger, the
 * credentials of per-grant database roles. Entries may expire; writes are durable when the
 * promise resolves. Values may hold secrets: the store is as sensitive as the issuer key.
 */
export interface PluginState {
  get(key: string): Promise<JsonValue | undefined>;
  /** Insert or replace. */
  put(key: string, value: JsonValue, options?: { expiresAt?: number }): Promise<void>;
  /** Write only when absent (or expired); true when this call wrote it. */
  putIfAbsent(key: string, value: JsonValue, options?: { expiresAt?: number }): Promise<boolean>;
  /** True when an entry was deleted. */
  delete(key: string): Promise<boolean>;
  /** Every live entry whose key starts with `prefix` (all of them without one). */
  list(prefix?: string): Promise<Array<{ key: string; value: JsonValue }>>;
}

export type { JsonValue };

export interface PluginContext<RC = { type: string }, Scope = AnyScope, LC = undefined> {
  readonly type: string;
  readonly gateway: GatewayInfo;
  /** The configured resources of this plugin's type, by name, already validated. */
  readonly resources: ReadonlyMap<string, RC>;
  /**
   * `gateway.<type>` parsed with the plugin's `listenerSchema` (`{}` when the block is
   * absent, so defaults apply); undefined for a plugin without a listener schema.
   */
  readonly listener: LC | undefined;
  readonly grants: GrantAuthenticator<Scope>;
  readonly sessions: SessionOpener<Scope>;
  readonly audit: AuditRecorder;
  readonly aws: AwsContext<Scope>;
  /** State shared with this plugin's instances on the other replicas. */
  readonly state: PluginState;
  readonly log: Logger;
  /** Mount HTTP routes on the gateway's listener (Hono sub-app) under a path prefix. */
  mount(prefix: string, app: Hono): void;
}

/** What `POST /v1/grants` returns under `connect` for this resource type. */
export type ConnectInfo = Record<string, unknown> & { env: Record<string, string> };

/** An MCP tool a plugin contributes (issue 15); the MCP host adds `grant_id`. */
export interface ToolContribution<Scope = AnyScope> {
  /** CONTRACT names, e.g. `query_postgres`, `call_dynamodb`. */
  readonly name: string;
  /** Says the result is data from the resource and may contain instructions. */
  readonly description: string;
  /** zod object WITHOUT grant_id: the MCP host adds `grant_id` and resolves it. */
  readonly inputSchema: z.ZodObject;
  /**
   * Run as a session of the grant. The host has already checked: the grant belongs to the
   * caller, is active, and is of this plugin's type. Honour `signal` (revocation).
   */
  run(call: ToolCall<Scope>, input: Record<string, unknown>): Promise<ToolResult>;
}

export interface ToolCall<Scope = AnyScope> {
  readonly grant: Grant<Scope>;
  readonly signal: AbortSignal;
  readonly limits: { readonly maxRows: number; readonly maxBytes: number };
}

export interface ToolResult {
  /** Structured content (columns with types, rows, caps applied, truncated flag...). */
  readonly structured: Record<string, unknown>;
  /** A short text rendering for models. */
  readonly text: string;
  readonly isError?: boolean;
}

export interface PluginInstance<Scope = AnyScope> {
  /** Addresses this plugin listens on, for logs and `airlock dev` (e.g. 127.0.0.1:6432). */
  readonly listening?: readonly string[];
  /** How the agent uses the grant with its ordinary client (moved here from the definition). */
  connectInfo?(input: { grant: Grant<Scope>; secret: string }): ConnectInfo;
  /**
   * Awaited before a grant is reported active (issue or approval). Throwing refuses the
   * activation: the grant ends (reason 'error') and the caller gets the error.
   */
  onGrantActive?(grant: Grant<Scope>): Promise<void>;
  /** After a grant ended (expired | revoked | denied | error); its sessions are already cut. */
  onGrantEnded?(grant: Grant<Scope>, reason: GrantEndReason): Promise<void>;
  /** MCP tools this plugin contributes (issue 15). */
  readonly tools?: readonly ToolContribution<Scope>[];
  /** Stop listening; live sessions are closed by the core before this is called. */
  close(): Promise<void>;
}

/** How a client proves it holds a grant's secret; each kind has its own stored verifier. */
export type CredentialKind = 'scram' | 'sigv4' | 'bearer';

export interface PluginDefinition<RC extends { type: string } = { type: string }, Scope extends AnyScope = AnyScope, LC = undefined> {
  /** The `type` of `resources.<name>` this plugin serves. */
  readonly type: string;
  /**
   * The credential kinds this plugin checks (SCRAM for Postgres, SigV4 for AWS APIs, bearer
   * tokens for HTTP). Only their verifiers are derived and stored. Default: all three.
   */
  readonly credentials?: readonly CredentialKind[];
  /** Schema of one resource block (including `type`); strict: unknown keys are errors. */
  readonly resourceSchema: z.ZodType<RC>;
  /** Schema of a grant's effective scope: the core parses stored scopes with it once. */
  readonly scopeSchema: z.ZodType<Scope>;
  /** Schema of `gateway.<type>` listener settings, if the plugin has any. */
  readonly listenerSchema?: z.ZodType<LC>;
  /** Access level names the resource defines. */
  accessLevels(resource: RC): string[];
  /**
   * The effective scope of a grant: the access level narrowed by the requested scope.
   * Throws AirlockError OUT_OF_SCOPE (widening) or BAD_REQUEST (malformed) with a reason.
   */
  resolveScope(resource: RC, access: string, requested: Record<string, unknown> | undefined): Scope;
  /** For AWS-facing resources: the region and per-grant role the core's AWS layer uses. */
  awsBinding?(resource: RC): AwsBinding;
  /** Start listeners or mount routes. */
  start(ctx: PluginContext<RC, Scope, LC>): Promise<PluginInstance<Scope>>;
}

// ---------------------------------------------------------------------------------------
// Audit sinks
// ---------------------------------------------------------------------------------------

/** One audit record as written (the CONTRACT shape of docs/contract.md "Audit records"). */
export interface AuditRecord {
  /** 2 for records written now; 1 for lines written before (canonical.ts). */
  v: 1 | 2;
  seq: number;
  ts: string;
  type: string;
  agent?: string;
  grant?: string;
  session?: string;
  resource?: string;
  task?: string;
  data?: Record<string, unknown>;
  outcome: AuditOutcome;
  prev: string;
  hash: string;
}

export interface SinkBatch {
  /** In seq order, contiguous, starting right after the sink's cursor. */
  readonly records: readonly AuditRecord[];
  /** The exact JSONL lines (without trailing newline), same order. */
  readonly lines: readonly string[];
}

export interface AuditSink {
  /**
   * Deliver a batch. Resolve only when it is stored at the destination; reject to have the
   * runner retry the same batch (with back-off). Delivery is at-least-once: a sink should
   * make a retried batch idempotent where the destination allows (deterministic keys,
   * skipping seqs it already holds).
   */
  deliver(batch: SinkBatch): Promise<void>;
  close?(): Promise<void>;
}

export interface SinkContext {
  readonly gatewayId: string;
  readonly dataDir: string;
  readonly aws: Pick<AwsContext, 'region' | 'endpoint'> & {
    /** airlock's own credentials (no grant). */
    credentials(): Promise<AwsCredentialIdentity>;
  };
  readonly log: Logger;
}

export interface SinkDefinition<SC extends { type: string } = { type: string }> {
  readonly type: string;
  /** Schema of one `audit.sinks[]` entry (including `type`); strict. */
  readonly schema: z.ZodType<SC>;
  /** Largest batch the runner should hand over (records). */
  readonly maxBatch?: number;
  /** Batch by age: how long the runner may wait for a full batch (ms; default 0, deliver at once). */
  lingerMs?(config: SC): number;
  create(config: SC, ctx: SinkContext): Promise<AuditSink>;
}

// ---------------------------------------------------------------------------------------
// Registration: each definition's own types are kept inside closures, so lists of
// plugins and sinks type-check without casts. The core drives only these erased views.
// ---------------------------------------------------------------------------------------

/** What the core hands a registered plugin's `start`: typed views are made from it. */
export interface PluginHost {
  readonly gateway: GatewayInfo;
  /** The validated resources of this plugin's type. */
  readonly resources: ReadonlyMap<string, { type: string }>;
  /** `gateway.<type>` as validated, or undefined when absent. */
  readonly listenerConfig: unknown;
  /** The grant checks for this plugin, handing out grants with scopes parsed by `parseScope`. */
  grants<S>(parseScope: (raw: AnyScope) => S): GrantAuthenticator<S>;
  sessions<S>(): SessionOpener<S>;
  readonly audit: AuditRecorder;
  aws<S>(grants: GrantAuthenticator<S>): AwsContext<S>;
  readonly state: PluginState;
  readonly log: Logger;
  mount(prefix: string, app: Hono): void;
}

/** A started plugin as the core drives it (grants with stored scopes). */
export interface StartedPlugin {
  readonly type: string;
  readonly listening: readonly string[];
  /** Undefined when the plugin gives no connect info. */
  connectInfo(input: { grant: Grant; secret: string }): ConnectInfo | undefined;
  onGrantActive(grant: Grant): Promise<void>;
  onGrantEnded(grant: Grant, reason: GrantEndReason): Promise<void>;
  readonly tools: readonly ToolContribution[];
  close(): Promise<void>;
}

export interface RegisteredPlugin {
  readonly type: string;
  /** Default: all three kinds. */
  readonly credentials: readonly CredentialKind[];
  readonly resourceSchema: z.ZodType<{ type: string }>;
  readonly listenerSchema: z.ZodType<unknown> | undefined;
  accessLevels(resource: { type: string }): string[];
  resolveScope(resource: { type: string }, access: string, requested: Record<string, unknown> | undefined): Record<string, unknown>;
  awsBinding(resource: { type: string }): AwsBinding | undefined;
  start(host: PluginHost): Promise<StartedPlugin>;
}

export function definePlugin<RC extends { type: string }, Scope extends AnyScope = AnyScope, LC = undefined>(
  definition: PluginDefinition<RC, Scope, LC>,
): RegisteredPlugin {
  const { schema: resourceSchema, typed } = typedResources(definition.resourceSchema);
  const parseScope = (raw: AnyScope): Scope => definition.scopeSchema.parse(raw);
  return {
    type: definition.type,
    credentials: definition.credentials ?? ['scram', 'sigv4', 'bearer'],
    resourceSchema,
    listenerSchema: definition.listenerSchema,
    accessLevels: (resource) => definition.accessLevels(typed(resource)),
    resolveScope: (resource, access, requested) => ({ ...definition.resolveScope(typed(resource), access, requested) }),
    awsBinding: (resource) => definition.awsBinding?.(typed(resource)),
    async start(host) {
      const resources = new Map<string, RC>();
      for (const [name, r] of host.resources) resources.set(name, typed(r));
      const grants = host.grants(parseScope);
      const instance = await definition.start({
        type: definition.type,
        gateway: host.gateway,
        resources,
        listener: definition.listenerSchema?.parse(host.listenerConfig ?? {}),
        grants,
        sessions: host.sessions<Scope>(),
        audit: host.audit,
        aws: host.aws(grants),
        state: host.state,
        log: host.log,
        mount: (prefix, app) => host.mount(prefix, app),
      });
      const asTyped = (grant: Grant): Grant<Scope> => ({ ...grant, scope: parseScope(grant.scope) });
      return {
        type: definition.type,
        listening: instance.listening ?? [],
        connectInfo: (input) => instance.connectInfo?.({ grant: asTyped(input.grant), secret: input.secret }),
        onGrantActive: async (grant) => instance.onGrantActive?.(asTyped(grant)),
        onGrantEnded: async (grant, reason) => instance.onGrantEnded?.(asTyped(grant), reason),
        tools: (instance.tools ?? []).map(
          (tool): ToolContribution => ({
            name: tool.name,
            description: tool.description,
            inputSchema: tool.inputSchema,
            run: (call, input) => tool.run({ grant: asTyped(call.grant), signal: call.signal, limits: call.limits }, input),
          }),
        ),
        close: () => instance.close(),
      };
    },
  };
}

export interface RegisteredSink {
  readonly type: string;
  readonly schema: z.ZodType<{ type: string }>;
  readonly maxBatch: number | undefined;
  lingerMs(config: { type: string }): number;
  /** Stable id of one configured sink, for its spool cursor (e.g. `file:/var/log/a.jsonl`). */
  cursorId(config: { type: string }): string;
  create(config: { type: string }, ctx: SinkContext): Promise<AuditSink>;
}

export function defineSink<SC extends { type: string }>(definition: SinkDefinition<SC> & { cursorId(config: SC): string }): RegisteredSink {
  const { schema, typed } = typedResources(definition.schema);
  return {
    type: definition.type,
    schema,
    maxBatch: definition.maxBatch,
    lingerMs: (config) => definition.lingerMs?.(typed(config)) ?? 0,
    cursorId: (config) => definition.cursorId(typed(config)),
    create: (config, ctx) => definition.create(typed(config), ctx),
  };
}

/**
 * A config block validated by the core (as `{type}`) back as the definition's own type.
 * The core validates each block with the schema returned here, which remembers every
 * object it produced, so a block the core validated is handed back as it is (a plugin's
 * schema may transform, so parsing its own output again is not always possible). Any
 * other object is parsed with the definition's schema.
 */
function typedResources<T extends { type: string }>(definitionSchema: z.ZodType<T>): { schema: z.ZodType<T>; typed: (value: { type: string }) => T } {
  const produced = new WeakMap<object, T>();
  const schema = definitionSchema.transform((value) => {
    produced.set(value, value);
    return value;
  });
  return {
    schema,
    typed: (value) => {
      let parsed = produced.get(value);
      if (parsed === undefined) {
        parsed = definitionSchema.parse(value);
        produced.set(value, parsed);
      }
      return parsed;
    },
  };
}
