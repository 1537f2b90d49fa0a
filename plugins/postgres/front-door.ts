/**
 * One client connection from accept to relay: SSLRequest (TLS), GSSENCRequest (refused),
 * CancelRequest (forwarded), StartupMessage, SCRAM-SHA-256 against the grant, the checks that
 * follow (grant active, database, access level), the audit session, the upstream login, and
 * finally the greeting the client expects. Every refusal ends in a FATAL ErrorResponse with
 * the SQLSTATE of sqlstate.ts and an `auth.failed` record; nothing here can affect another
 * connection.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { AirlockError, ErrorCodes, isAirlockError } from '../../core/errors.ts';
import type { AuditReceipt, CloseReason, Grant, ScramVerifier, Session } from '../../core/plugin.ts';
import type { CancelRegistry } from './cancel-registry.ts';
import type { PostgresContext, PostgresListenerConfig, PostgresResource, PostgresScope } from './config.ts';
import type { FailureLimiter } from '../../core/public.ts';
import { rdsIamToken } from './rds-iam.ts';
import { Relay } from './relay.ts';
import { SCRAM_SHA_256 } from './scram/common.ts';
import { ScramServerExchange } from './scram/server.ts';
import { fatalFor, terminationFor } from './sqlstate.ts';
import { connectUpstream, sendUpstreamCancel, type UpstreamConnection, type UpstreamTarget } from './upstream.ts';
import { ProtocolViolation } from './wire/buffer-reader.ts';
import {
  serializeAuthOk, serializeAuthSASL, serializeAuthSASLContinue, serializeAuthSASLFinal,
  serializeBackendKeyData, serializeError, serializeNegotiateProtocolVersion, type ErrorFields,
} from './wire/backend.ts';
import { parseSASLInitialResponse, parseStartupRequest } from './wire/frontend.ts';
import { MessageReader, PeerClosed } from './wire/message-reader.ts';
import { Frontend } from './wire/protocol.ts';

/** PostgreSQL's own limit for the startup packet; SASL messages are far smaller. */
const MAX_HANDSHAKE_MESSAGE = 10_000;
const NOT_FORWARDED = new Set(['user', 'database', 'replication']);

export interface FrontDoorDeps {
  ctx: PostgresContext;
  listener: PostgresListenerConfig;
  secureContext: SecureContext | null;
  cancels: CancelRegistry;
  /** Passwords of `auth.type: password` resources by `passwordKey(resource, level)`, read from the environment at start. */
  passwords: ReadonlyMap<string, string>;
  /** CA bundles of `tls: verify-full` resources, read at start. */
  caBundles: ReadonlyMap<string, string>;
  /** Failed logins per client address: guessing grant secrets costs the guesser. */
  failures: FailureLimiter;
  /** Registers a live relay so the listener can tear it down on close. */
  onRelay(relay: Relay, done: Promise<void>): void;
}

/** A refusal already decided: what to tell the client and what to record. */
class Refusal extends Error {
  constructor(
    readonly error: AirlockError,
    readonly claimedId: string | undefined,
    readonly resource: string | undefined,
  ) {
    super(error.message);
  }
}

function quiet(receipt: AuditReceipt): void {
  receipt.spooled.catch(() => {});
  receipt.durable.catch(() => {});
}

export async function serveConnection(raw: Socket, deps: FrontDoorDeps): Promise<void> {
  const { ctx } = deps;
  const address = raw.remoteAddress ?? '?';
  const source = `${address}:${raw.remotePort ?? '?'}`;
  let socket: Socket | TLSSocket = raw;
  raw.setNoDelay(true);
  raw.on('error', () => {}); // reported through the reader; never crash the gateway
  const timer = setTimeout(() => socket.destroy(), deps.listener.handshakeTimeoutMs);
  timer.unref();
  let reader = new MessageReader(socket, MAX_HANDSHAKE_MESSAGE);
  let user: string | undefined;
  let session: Session | undefined;
  let upstream: UpstreamConnection | undefined;
  const abortUpstream = new AbortController();
  let relay: Relay | undefined;
  /** Set when the core ends the session before the relay has started. */
  let earlyClose: ErrorFields | undefined;

  try {
    // ---- Untyped first messages: SSL / GSSENC negotiation, cancel, startup -------------
    let startup: Extract<ReturnType<typeof parseStartupRequest>, { kind: 'startup' }>;
    for (;;) {
      const msg = await reader.readUntyped();
      const req = parseStartupRequest(msg.body);
      if (req.kind === 'ssl' || req.kind === 'gssenc') {
        if (socket !== raw) throw new ProtocolViolation('encryption negotiated twice');
        // Bytes already sent after the request would bypass TLS (CVE-2021-23214): refuse.
        if (reader.pending > 0) throw new ProtocolViolation('unencrypted data after SSLRequest');
        if (req.kind === 'gssenc' || deps.secureContext === null) {
          raw.write('N');
          continue;
        }
        raw.write('S');
        reader.detach();
        const secure: TLSSocket = new TLSSocket(raw, { isServer: true, secureContext: deps.secureContext });
        secure.on('error', () => {});
        socket = secure;
        reader = new MessageReader(secure, MAX_HANDSHAKE_MESSAGE);
        secure.resume();
        continue;
      }
      if (req.kind === 'cancel') {
        clearTimeout(timer);
        if (!deps.cancels.cancel(req.pid, req.key)) {
          quiet(ctx.audit.authFailed({ source, code: ErrorCodes.BAD_CREDENTIAL, reason: 'cancel request with an unknown key' }));
        }
        socket.destroy(); // the protocol sends no reply to a cancel request
        return;
      }
      startup = req;
      break;
    }

    user = startup.params.get('user');
    if (!user) throw new Refusal(new AirlockError(ErrorCodes.BAD_REQUEST, 'no user name specified: use the grant id'), undefined, undefined);
    const replication = startup.params.get('replication');
    if (replication !== undefined && !['false', 'off', 'no', '0'].includes(replication.toLowerCase())) {
      throw new Refusal(new AirlockError(ErrorCodes.BAD_REQUEST, 'replication connections are not supported'), user, undefined);
    }
    if (startup.minor > 0 || startup.protocolOptions.length > 0) {
      socket.write(serializeNegotiateProtocolVersion(0, startup.protocolOptions));
    }

    if (deps.failures.blocked(address)) {
      throw new Refusal(new AirlockError(ErrorCodes.RATE_LIMITED, 'too many failed logins from this address; try again later'), user, undefined);
    }

    // ---- SCRAM-SHA-256 against the grant (or a decoy, so unknown ids look like bad passwords)
    let grant: Grant<PostgresScope> | undefined;
    let verifier: ScramVerifier;
    let lookupError: AirlockError | undefined;
    try {
      ({ grant, verifier } = ctx.grants.scram(user));
    } catch (e) {
      if (!isAirlockError(e, ErrorCodes.GRANT_UNKNOWN) && !isAirlockError(e, ErrorCodes.WRONG_RESOURCE)) throw e;
      lookupError = e;
      verifier = ctx.grants.decoyScram(user);
    }
    socket.write(serializeAuthSASL([SCRAM_SHA_256]));
    const first = await reader.readTyped();
    if (first.type !== Frontend.Password) throw new ProtocolViolation('expected SASLInitialResponse');
    const initial = parseSASLInitialResponse(first.body);
    if (initial.mechanism !== SCRAM_SHA_256) throw new ProtocolViolation(`unsupported SASL mechanism "${initial.mechanism}"`);
    const exchange = new ScramServerExchange(verifier);
    socket.write(serializeAuthSASLContinue(exchange.serverFirstMessage(initial.data)));
    const final = await reader.readTyped();
    if (final.type !== Frontend.Password) throw new ProtocolViolation('expected SASLResponse');
    const serverFinal = exchange.verifyClientFinal(final.body);
    if (lookupError) throw new Refusal(lookupError, user, undefined);
    if (!serverFinal || !grant) throw new Refusal(new AirlockError(ErrorCodes.BAD_CREDENTIAL, 'wrong password for grant'), user, grant?.resource);

    // ---- The grant proved: is it usable here, now? -------------------------------------
    try {
      grant = ctx.grants.requireActive(grant.id);
    } catch (e) {
      throw new Refusal(isAirlockError(e) ? e : new AirlockError(ErrorCodes.INTERNAL, 'grant check failed'), user, grant.resource);
    }
    const resource = ctx.resources.get(grant.resource);
    if (!resource) throw new Refusal(new AirlockError(ErrorCodes.WRONG_RESOURCE, 'grant is for an unknown resource'), user, grant.resource);
    const database = startup.params.get('database') || user;
    if (database !== resource.database) {
      throw new Refusal(new AirlockError(ErrorCodes.OUT_OF_SCOPE, `grant ${grant.id} is for database "${resource.database}", not "${database}"`), user, grant.resource);
    }
    const level = resource.access[grant.access];
    if (!level) throw new Refusal(new AirlockError(ErrorCodes.GRANT_DENIED, `access level "${grant.access}" no longer exists on ${grant.resource}`), user, grant.resource);

    // ---- Session, then upstream ------------------------------------------------------
    const grantId = grant.id;
    try {
      session = ctx.sessions.open(grant, {
        source,
        data: { database, dbUser: level.user, tls: socket !== raw },
        onClose: (reason: CloseReason, message: string) => {
          const fields = terminationFor(grantId, reason, message);
          if (relay) relay.closeFromCore(fields);
          else {
            earlyClose = fields;
            abortUpstream.abort();
          }
        },
      });
    } catch (e) {
      throw new Refusal(isAirlockError(e) ? e : new AirlockError(ErrorCodes.INTERNAL, 'session could not open'), user, grant.resource);
    }

    const target = upstreamTarget(deps, grant.resource, resource, grant.access, level.user, startup.params);
    try {
      upstream = await connectUpstream(target, abortUpstream.signal);
    } catch (e) {
      if (earlyClose) throw new EarlyClose();
      const err = isAirlockError(e) ? e : new AirlockError(ErrorCodes.UPSTREAM_FAILED, 'upstream login failed');
      session.end('error', { error: err.message });
      throw err;
    }
    if (earlyClose) throw new EarlyClose();

    // ---- Greeting: our cancel key, the upstream's parameters -------------------------
    const up = upstream;
    const activeSession = session;
    const cancelUpstream = () => {
      sendUpstreamCancel(target, up.pid, up.key).catch((err: unknown) => ctx.log.warn({ err: (err as Error).message }, 'cancel forwarding failed'));
    };
    const cancelKey = deps.cancels.issue(() => {
      quiet(activeSession.record('pg.cancel', {}, 'ok'));
      cancelUpstream();
    });
    clearTimeout(timer);
    socket.write(Buffer.concat([
      serializeAuthSASLFinal(serverFinal),
      serializeAuthOk(),
      ...up.greeting,
      serializeBackendKeyData(cancelKey.pid, cancelKey.key),
      up.ready,
    ]));

    // ---- Relay ------------------------------------------------------------------------
    const clientLeftover = reader.detach();
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    relay = new Relay({
      client: socket,
      upstream: up.socket,
      session,
      maxMessageBytes: deps.listener.maxMessageBytes,
      recordParameters: resource.recordParameters,
      log: ctx.log,
      cancelUpstream,
      onDone: () => {
        cancelKey.release();
        resolveDone();
      },
    });
    deps.onRelay(relay, done);
    relay.start(clientLeftover, up.leftover);
  } catch (e) {
    clearTimeout(timer);
    reader.detach();
    upstream?.socket.destroy();
    if (e instanceof PeerClosed) {
      session?.end('client');
      socket.destroy();
      return;
    }
    if (e instanceof EarlyClose) {
      closeWith(socket, earlyClose);
      return;
    }
    const refusal = e instanceof Refusal ? e : null;
    const error = refusal ? refusal.error : isAirlockError(e) ? e : new AirlockError(ErrorCodes.INTERNAL, 'internal error');
    if (!isAirlockError(e) && !refusal) ctx.log.error({ err: e }, 'postgres handshake failed');
    if (error.code === ErrorCodes.BAD_CREDENTIAL || error.code === ErrorCodes.GRANT_UNKNOWN || error.code === ErrorCodes.WRONG_RESOURCE) {
      deps.failures.fail(address);
    }
    if (!session) {
      quiet(ctx.audit.authFailed({
        resource: refusal?.resource,
        claimedId: refusal?.claimedId ?? user,
        source,
        code: error.code,
        reason: error.message,
      }));
    }
    closeWith(socket, fatalFor(error, user));
  }
}

class EarlyClose extends Error {}

export function passwordKey(resource: string, level: string): string {
  return `${resource}\0${level}`;
}

function closeWith(socket: Socket | TLSSocket, fields: ErrorFields | undefined): void {
  if (socket.destroyed) return;
  if (fields && socket.writable) socket.end(serializeError(fields));
  else socket.end();
  setTimeout(() => socket.destroy(), 250).unref();
}

function upstreamTarget(
  deps: FrontDoorDeps,
  resourceName: string,
  resource: PostgresResource,
  accessLevel: string,
  dbUser: string,
  clientParams: ReadonlyMap<string, string>,
): UpstreamTarget {
  const params: Record<string, string> = {};
  for (const [k, v] of clientParams) if (!NOT_FORWARDED.has(k)) params[k] = v;
  const auth = resource.auth;
  return {
    host: resource.host,
    port: resource.port,
    tls: resource.tls,
    ca: deps.caBundles.get(resourceName),
    user: dbUser,
    database: resource.database,
    params,
    timeoutMs: resource.connectTimeoutMs,
    password: async () => {
      if (auth.type === 'rds-iam') {
        return await rdsIamToken(deps.ctx.aws, {
          resource: resourceName,
          host: resource.host,
          port: resource.port,
          user: dbUser,
          region: resource.region ?? deps.ctx.aws.region,
        });
      }
      const pw = deps.passwords.get(passwordKey(resourceName, accessLevel));
      if (pw === undefined) throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `the password for ${resourceName} is not set`);
      return pw;
    },
  };
}
