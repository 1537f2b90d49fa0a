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

// ---------------------------------------------------------------------------------------
// Grants as plugins see them
// ---------------------------------------------------------------------------------------

export type GrantStatus = 'pending' | 'active' | 'expired' | 'revoked' | 'denied';

/** A grant without its secret. `scope` is the effective scope, already narrowed. */
export interface Grant {
  readonly id: string;
  /** `issuer-name:subject`, e.g. `local:report-bot`. */
  readonly agent: string;
  readonly resource: string;
  readonly resourceType: string;
  readonly access: string;
  readonly scope: Readonly<Record<string, unknown>>;
  readonly task: string;
  readonly status: GrantStatus;
  readonly createdAt: string;
  /** Null while pending: the TTL counts from approval. */
  readonly expiresAt: string | null;
  readonly ttlMs: number;
}

/** The SCRAM-SHA-256 verifier stored for a grant (RFC 5802/7677); never the password. */
export interface ScramVerifier {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** What a plugin can ask about grants. Every method checks the plugin's resource type. */
export interface GrantAuthenticator {
  /**
   * Look up a grant by id for a challenge-response protocol. Throws AirlockError
   * GRANT_UNKNOWN or WRONG_RESOURCE; returns the grant whatever its status so the plugin
   * can finish the exchange before refusing (do not reveal which grants exist: on
   * GRANT_UNKNOWN run the exchange against `decoyScram()` and fail at the end).
   */
  scram(grantId: string): { grant: Grant; verifier: ScramVerifier };
  /** A verifier that matches no password, for unknown users. */
  decoyScram(grantId: string): ScramVerifier;
  /** Verify an opaque bearer credential (`connect` of eks). Throws on any failure. */
  bearer(token: string): Grant;
  /**
   * The SigV4 signing key for a grant-issued access key on one date/region/service
   * (derived from the stored per-date key: the secret itself is not kept).
   * Throws GRANT_UNKNOWN / WRONG_RESOURCE; the caller checks status with `requireActive`.
   */
  sigv4SigningKey(grantId: string, date: string, region: string, service: string): { grant: Grant; key: Buffer };
  /** Re-read a grant and throw GRANT_PENDING / EXPIRED / REVOKED / DENIED unless active. */
  requireActive(grantId: string): Grant;
  /** Current state of a grant, or undefined. */
  get(grantId: string): Grant | undefined;
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
  grant?: Grant | undefined;
  session?: string | undefined;
  /** When there is no grant (e.g. `auth.failed` for an unknown credential). */
  agent?: string | undefined;
  resource?: string | undefined;
  data?: Record<string, unknown> | undefined;
  outcome: AuditOutcome;
}

export interface AuditRecorder {
  record(event: AuditEventInput): AuditReceipt;
  /** `auth.failed`, with the claimed credential id (never the secret) and the source. */
  authFailed(input: {
    resource?: string | undefined;
    claimedId?: string | undefined;
    source?: string | undefined;
    code: string;
    reason: string;
    data?: Record<string, unknown> | undefined;
  }): AuditReceipt;
}

// ---------------------------------------------------------------------------------------
// Sessions: live connections or streams the core can close on expiry or revocation
// ---------------------------------------------------------------------------------------

export type CloseReason = 'client' | 'expired' | 'revoked' | 'error' | 'policy' | 'shutdown';

export interface SessionOptions {
  /** Remote address, for the record. */
  source?: string | undefined;
  /** Extra data for `session.opened`. */
  data?: Record<string, unknown> | undefined;
  /**
   * Called once when the core ends the session (expiry, revocation, shutdown). The plugin
   * tells its client why, then tears down both sides. Must not throw.
   */
  onClose: (reason: CloseReason, message: string) => void | Promise<void>;
}

export interface Session {
  readonly id: string;
  readonly grant: Grant;
  readonly openedAt: number;
  /** Record an event in this session (fills grant and session fields). */
  record(type: string, data: Record<string, unknown>, outcome: AuditOutcome): AuditReceipt;
  /**
   * End the session from the plugin's side (client went away, error). Records
   * `session.closed` once; calling again is a no-op. Does not call `onClose`.
   */
  end(reason: CloseReason, data?: Record<string, unknown>): void;
  readonly closed: boolean;
}

export interface SessionOpener {
  /**
   * Open a session for an active grant: records `session.opened` and registers `onClose`.
   * Throws AirlockError (grant no longer active; AUDIT_UNAVAILABLE when the spool is full).
   */
  open(grant: Grant, options: SessionOptions): Session;
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

export interface VerifiedAwsRequest {
  grant: Grant;
  region: string;
  service: string;
  accessKeyId: string;
}

export interface AwsCredentialRequest {
  /** Resource name: per-resource `roleArn` is assumed when set. */
  resource: string;
  /** With `roleArn`: RoleSessionName = grant id, SourceIdentity = agent; cached per grant. */
  grant?: Grant | undefined;
  /** IAM session policy narrowing the assumed role to the grant's scope. */
  sessionPolicy?: Record<string, unknown> | undefined;
}

export interface AwsContext {
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
  verifyInbound(request: InboundAwsRequest, expect: { service: string }): Promise<VerifiedAwsRequest>;
}

// ---------------------------------------------------------------------------------------
// What the core hands a plugin
// ---------------------------------------------------------------------------------------

export interface GatewayInfo {
  /** e.g. http://127.0.0.1:8080 (https when gateway.http.tls is set). */
  readonly publicUrl: string;
  /** PEM of the HTTP listener's certificate when TLS is on (for kubeconfig CA data). */
  readonly httpCaPem: string | undefined;
  readonly dataDir: string;
  readonly gatewayId: string;
  /** `gateway.<plugin type>` block of the config (e.g. gateway.postgres), if any. */
  readonly listenerConfig: Record<string, unknown> | undefined;
  /** TLS material for protocol listeners (configured or generated self-signed). */
  tls(): Promise<SecureContextOptions & { certPem: string }>;
}

export interface PluginContext<RC> {
  readonly type: string;
  readonly gateway: GatewayInfo;
  /** The configured resources of this plugin's type, by name, already validated. */
  readonly resources: ReadonlyMap<string, RC>;
  readonly grants: GrantAuthenticator;
  readonly sessions: SessionOpener;
  readonly audit: AuditRecorder;
  readonly aws: AwsContext;
  readonly log: Logger;
  /** Mount HTTP routes on the gateway's listener (Hono sub-app) under a path prefix. */
  mount(prefix: string, app: Hono): void;
}

export interface PluginInstance {
  /** Addresses this plugin listens on, for logs and `airlock dev` (e.g. 127.0.0.1:6432). */
  readonly listening?: readonly string[];
  /** Stop listening; live sessions are closed by the core before this is called. */
  close(): Promise<void>;
}

/** What `POST /v1/grants` returns under `connect` for this resource type. */
export type ConnectInfo = Record<string, unknown> & { env: Record<string, string> };

/** How a client proves it holds a grant's secret; each kind has its own stored verifier. */
export type CredentialKind = 'scram' | 'sigv4' | 'bearer';

export interface PluginDefinition<RC extends { type: string } = { type: string }> {
  /** The `type` of `resources.<name>` this plugin serves. */
  readonly type: string;
  /**
   * The credential kinds this plugin checks (SCRAM for Postgres, SigV4 for AWS APIs, bearer
   * tokens for HTTP). Only their verifiers are derived and stored. Default: all three.
   */
  readonly credentials?: readonly CredentialKind[];
  /** Schema of one resource block (including `type`); strict: unknown keys are errors. */
  readonly resourceSchema: z.ZodType<RC>;
  /** Schema of `gateway.<type>` listener settings, if the plugin has any. */
  readonly listenerSchema?: z.ZodType<Record<string, unknown>>;
  /** Access level names the resource defines. */
  accessLevels(resource: RC): string[];
  /**
   * The effective scope of a grant: the access level narrowed by the requested scope.
   * Throws AirlockError OUT_OF_SCOPE (widening) or BAD_REQUEST (malformed) with a reason.
   */
  resolveScope(resource: RC, access: string, requested: Record<string, unknown> | undefined): Record<string, unknown>;
  /** How the agent uses the grant with its ordinary client. */
  connectInfo(input: {
    resourceName: string;
    resource: RC;
    grant: Grant;
    secret: string;
    gateway: GatewayInfo;
  }): ConnectInfo;
  /** Start listeners or mount routes. */
  start(ctx: PluginContext<RC>): Promise<PluginInstance>;
}

// ---------------------------------------------------------------------------------------
// Audit sinks
// ---------------------------------------------------------------------------------------

/** One audit record as written (the CONTRACT shape of SPEC "Audit records"). */
export interface AuditRecord {
  v: 1;
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
// Registration: erase each definition's own config type so lists of them type-check.
// ---------------------------------------------------------------------------------------

export type RegisteredPlugin = PluginDefinition<{ type: string }>;
export type RegisteredSink = SinkDefinition<{ type: string }> & {
  /** Stable id of one configured sink, for its spool cursor (e.g. `file:/var/log/a.jsonl`). */
  cursorId(config: { type: string }): string;
};

export function definePlugin<RC extends { type: string }>(definition: PluginDefinition<RC>): RegisteredPlugin {
  return definition as unknown as RegisteredPlugin;
}

export function defineSink<SC extends { type: string }>(
  definition: SinkDefinition<SC> & { cursorId(config: SC): string },
): RegisteredSink {
  return definition as unknown as RegisteredSink;
}
