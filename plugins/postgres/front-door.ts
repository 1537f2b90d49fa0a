/**
 * One client connection from accept to relay, as named stages (one file each under stages/):
 * handleStartup (TLS, cancel, StartupMessage) → authenticate (SCRAM against the grant) →
 * checkAccess (grant active, database, access level) → openSession (the audit session) →
 * connectUpstream (login as the level's database user) → makeClientReady (the greeting the
 * client expects) → relay. Every refusal ends in a FATAL ErrorResponse (the SQLSTATE of
 * sqlstate.ts, or the upstream server's own) and a record; nothing here can affect another
 * connection.
 */
import type { Socket } from 'node:net';
import type { TLSSocket, SecureContext } from 'node:tls';
import { AirlockError, ErrorCodes, isAirlockError } from '../../core/errors.ts';
import type { CloseReason, Session } from '../../core/plugin.ts';
import type { CancelRegistry } from './cancel-registry.ts';
import type { PostgresContext, PostgresListenerConfig } from './config.ts';
import { recordEvent } from './audit-step.ts';
import type { GrantRoles } from './provision/grant-roles.ts';
import { Relay } from './relay.ts';
import { SessionSettings } from './session-settings.ts';
import { fatalFor, terminationFor } from './sqlstate.ts';
import { authenticate } from './stages/authenticate.ts';
import { checkAccess, type Access } from './stages/check-access.ts';
import { connectUpstream } from './stages/connect-upstream.ts';
import type { UpstreamSecrets } from './upstream-secrets.ts';
import { handleStartup } from './stages/handle-startup.ts';
import { EarlyClose, MAX_HANDSHAKE_MESSAGE, Refusal, type Handshake } from './stages/handshake.ts';
import { sendUpstreamCancel, type UpstreamConnection, type UpstreamTarget } from './upstream.ts';
import { serializeAuthOk, serializeAuthSASLFinal, serializeBackendKeyData, serializeError, serializeErrorFields, type ErrorFields } from './wire/backend.ts';
import { MessageReader, PeerClosed } from './wire/message-reader.ts';

/** A credential that did not verify: past its address's failure budget it is answered as rate limited. */
const CREDENTIAL_FAILURES: ReadonlySet<string> = new Set([ErrorCodes.BAD_CREDENTIAL, ErrorCodes.GRANT_UNKNOWN, ErrorCodes.WRONG_RESOURCE]);

export interface FrontDoorDeps {
  ctx: PostgresContext;
  listener: PostgresListenerConfig;
  secureContext: SecureContext | null;
  cancels: CancelRegistry;
  /** Static levels' passwords and CA bundles, read at start. */
  secrets: UpstreamSecrets;
  /** The per-grant roles of provisioned levels (whom their sessions log in as). */
  roles: GrantRoles;
  /** Registers a live relay so the listener can tear it down on close. */
  onRelay(relay: Relay, done: Promise<void>): void;
}

/** What a connection holds as it goes through the stages (for the clean-up on failure). */
interface Progress {
  session: Session | undefined;
  upstream: UpstreamConnection | undefined;
  relay: Relay | undefined;
  /** Aborts the upstream login (a cut before the relay runs); dropped once the relay does. */
  abortUpstream: AbortController | undefined;
}

export async function serveConnection(raw: Socket, deps: FrontDoorDeps): Promise<void> {
  raw.setNoDelay(true);
  raw.on('error', () => {}); // reported through the reader; never crash the gateway
  const h: Handshake = {
    raw, socket: raw, reader: new MessageReader(raw, MAX_HANDSHAKE_MESSAGE),
    source: `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`,
    user: undefined, earlyClose: undefined,
  };
  const timer = setTimeout(() => h.socket.destroy(), deps.listener.handshakeTimeoutMs);
  timer.unref();
  const abortUpstream = new AbortController();
  const progress: Progress = { session: undefined, upstream: undefined, relay: undefined, abortUpstream };
  try {
    const startup = await handleStartup(h, {
      secureContext: deps.secureContext, allowPlaintext: deps.listener.allowPlaintext, cancels: deps.cancels, audit: deps.ctx.audit,
    });
    if (startup === null) return;
    const { grant, serverFinal } = await authenticate(h, deps.ctx);
    const access = await checkAccess(deps.ctx, deps.roles, grant, h.user ?? '', startup.params);
    const session = (progress.session = openSession(h, deps, access, progress));
    const { upstream, target } = await connectUpstream(h, deps, access, session, startup.params, abortUpstream.signal);
    progress.upstream = upstream;
    clearTimeout(timer);
    const cancelKey = makeClientReady(h, deps, session, upstream, target, serverFinal);
    startRelay(h, deps, access, session, upstream, target, cancelKey.release, progress);
  } catch (e) {
    clearTimeout(timer);
    handshakeFailed(h, deps, progress, e);
  }
}

/** Stage 4, openSession: the audit session; a cut by the core before the relay runs aborts the login. */
function openSession(h: Handshake, deps: FrontDoorDeps, access: Access, progress: Progress): Session {
  const grantId = access.grant.id;
  try {
    return deps.ctx.sessions.open(access.grant, {
      source: h.source,
      data: { database: access.database, dbUser: access.login.user, tls: h.socket !== h.raw },
      onClose: (reason: CloseReason, message: string) => {
        const fields = terminationFor(grantId, reason, message);
        if (progress.relay) progress.relay.closeFromCore(fields);
        else {
          h.earlyClose = fields;
          progress.abortUpstream?.abort();
        }
      },
    });
  } catch (e) {
    throw new Refusal(isAirlockError(e) ? e : new AirlockError(ErrorCodes.INTERNAL, 'session could not open'), h.user, access.grant.resource);
  }
}

/**
 * Stage 6, makeClientReady: the greeting. BackendKeyData carries the server's real process
 * id (so it matches pg_backend_pid() and notifications) with a secret key of airlock's own.
 */
function makeClientReady(
  h: Handshake, deps: FrontDoorDeps, session: Session, up: UpstreamConnection, target: UpstreamTarget, serverFinal: Buffer,
): { release: () => void } {
  const upstreamKey = keyOf(up);
  const cancelKey = deps.cancels.issue(up.pid, () => {
    recordEvent(session, 'pg.cancel', {});
    cancelUpstream(deps, target, upstreamKey);
  });
  h.socket.write(Buffer.concat([
    serializeAuthSASLFinal(serverFinal),
    serializeAuthOk(),
    ...up.greeting,
    serializeBackendKeyData(cancelKey.pid, cancelKey.key),
    up.ready,
  ]));
  return cancelKey;
}

/**
 * What a live session keeps of its upstream login: the process id and cancel key. The
 * closures a session holds capture this, not the connection, so the greeting's frames are
 * garbage once the client has them (an idle session's memory, bench/README.md).
 */
interface UpstreamKey {
  pid: number;
  key: Buffer;
}

function keyOf(up: UpstreamConnection): UpstreamKey {
  return { pid: up.pid, key: up.key };
}

function cancelUpstream(deps: FrontDoorDeps, target: UpstreamTarget, up: UpstreamKey): void {
  sendUpstreamCancel(target, up.pid, up.key).catch((err: unknown) => deps.ctx.log.warn({ err: (err as Error).message }, 'cancel forwarding failed'));
}

/** Stage 7, relay: hand both sockets (and any bytes read ahead) to the Relay. */
function startRelay(
  h: Handshake, deps: FrontDoorDeps, access: Access, session: Session, up: UpstreamConnection, target: UpstreamTarget,
  releaseCancelKey: () => void, progress: Progress,
): void {
  const clientLeftover = h.reader.detach();
  const upstreamKey = keyOf(up);
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const relay = new Relay({
    client: h.socket,
    upstream: up.socket,
    session,
    audit: deps.ctx.audit,
    maxMessageBytes: deps.listener.maxMessageBytes,
    recordParameters: access.resource.recordParameters,
    readOnly: access.readOnly,
    settings: new SessionSettings(up.parameters),
    log: deps.ctx.log,
    cancelUpstream: () => cancelUpstream(deps, target, upstreamKey),
    onDone: () => {
      releaseCancelKey();
      resolveDone();
    },
  });
  progress.relay = relay;
  deps.onRelay(relay, done);
  relay.start(clientLeftover, up.leftover);
  // The relay owns the upstream socket now (and closes it): a live session keeps nothing of its login.
  progress.upstream = undefined;
  progress.abortUpstream = undefined;
}

/** Any stage failed: end the session or record the failed login, tell the client, close. */
function handshakeFailed(h: Handshake, deps: FrontDoorDeps, progress: Progress, e: unknown): void {
  const { ctx } = deps;
  h.reader.detach();
  progress.upstream?.socket.destroy();
  if (e instanceof PeerClosed) {
    progress.session?.end('client');
    h.socket.destroy();
    return;
  }
  if (e instanceof EarlyClose) return closeWith(h.socket, h.earlyClose);
  const refusal = e instanceof Refusal ? e : null;
  let error = refusal ? refusal.error : isAirlockError(e) ? e : new AirlockError(ErrorCodes.INTERNAL, 'internal error');
  if (!isAirlockError(e) && !refusal) ctx.log.error({ err: e }, 'postgres handshake failed');
  if (!progress.session) {
    const failure = { resource: refusal?.resource, claimedId: refusal?.claimedId ?? h.user, source: h.source, code: error.code, reason: error.message };
    // nothing waits on the receipts (a receipt never rejects unhandled)
    if (CREDENTIAL_FAILURES.has(error.code)) {
      if (ctx.audit.authRefused(failure).limited) error = new AirlockError(ErrorCodes.RATE_LIMITED, 'too many failed logins from this address; try again later');
    } else ctx.audit.authFailed(failure);
  }
  const fields = refusal?.fields;
  if (fields === undefined) closeWith(h.socket, fatalFor(error, h.user));
  else closeWith(h.socket, isFieldMap(fields) ? serializeErrorFields(fields) : fields);
}

function isFieldMap(f: ErrorFields | ReadonlyMap<string, string>): f is ReadonlyMap<string, string> {
  return f instanceof Map;
}

function closeWith(socket: Socket | TLSSocket, fields: ErrorFields | Buffer | undefined): void {
  if (socket.destroyed) return;
  if (fields && socket.writable) socket.end(Buffer.isBuffer(fields) ? fields : serializeError(fields));
  else socket.end();
  setTimeout(() => socket.destroy(), 250).unref();
}
