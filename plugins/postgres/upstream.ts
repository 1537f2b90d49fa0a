/**
 * airlock as the client of the upstream database: TCP (+ TLS per the resource), the startup
 * message as the access level's user, authentication the way the server asks (SCRAM-SHA-256,
 * MD5 or cleartext, the latter two only because servers may be configured so), then the
 * greeting up to ReadyForQuery. The greeting's ParameterStatus/Notice frames are kept to hand
 * to the client unchanged; BackendKeyData's pid is shown to the client (with a key of
 * airlock's own), its key kept for cancel forwarding and never shown.
 */
import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { AirlockError, ErrorCodes, isAirlockError } from '../../core/errors.ts';
import { ScramClientExchange } from './scram/client.ts';
import { SCRAM_SHA_256 } from './scram/common.ts';
import { parseAuthRequest, parseBackendKeyData, parseErrorFields, parseParameterStatus } from './wire/backend.ts';
import { serializePassword, serializeSASLInitialResponse, serializeSASLResponse, serializeSSLRequest, serializeStartup, serializeCancelRequest, serializeTerminate } from './wire/frontend.ts';
import { MessageReader, PeerClosed } from './wire/message-reader.ts';
import { AuthCode, Backend } from './wire/protocol.ts';

export interface UpstreamTarget {
  host: string;
  port: number;
  tls: 'disable' | 'require' | 'verify-full';
  /** PEM CA bundle for verify-full. */
  ca?: string | undefined;
  user: string;
  database: string;
  /** Asked for only if the server requests a password (so an RDS token is minted only when needed). */
  password: () => Promise<string>;
  /** Extra startup parameters passed through from the client (application_name, …). */
  params: Record<string, string>;
  timeoutMs: number;
}

export interface UpstreamConnection {
  socket: Socket | TLSSocket;
  /** The server's own cancel key. */
  pid: number;
  key: Buffer;
  /** ParameterStatus and NoticeResponse frames of the greeting, verbatim. */
  greeting: Buffer[];
  /** The greeting's ParameterStatus values. */
  parameters: Map<string, string>;
  /** The ReadyForQuery frame ending the greeting. */
  ready: Buffer;
  /** Bytes received after ReadyForQuery (normally none). */
  leftover: Buffer[];
}

const MAX_HANDSHAKE_MESSAGE = 1024 * 1024;

/**
 * The upstream server refused the login with its own ErrorResponse (e.g. 53300 too many
 * connections, 57P03 starting up, 28000): the client gets those fields, not a rewrap.
 */
export class UpstreamRefusal extends AirlockError {
  constructor(readonly fields: ReadonlyMap<string, string>) {
    super(ErrorCodes.UPSTREAM_FAILED, `upstream refused the connection: ${fields.get('M') ?? 'unknown error'} (SQLSTATE ${fields.get('C') ?? '?'})`);
  }
}

function failed(message: string, cause?: unknown): AirlockError {
  return new AirlockError(ErrorCodes.UPSTREAM_FAILED, message, cause === undefined ? undefined : { cause });
}

function frame(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

/** Open a TCP connection, negotiate TLS when the target asks for it. */
export async function openTransport(target: Pick<UpstreamTarget, 'host' | 'port' | 'tls' | 'ca'>, signal: AbortSignal): Promise<Socket | TLSSocket> {
  const raw = netConnect({ host: target.host, port: target.port, noDelay: true });
  const abort = () => raw.destroy(failed('upstream connection timed out'));
  signal.addEventListener('abort', abort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      raw.once('connect', resolve);
      raw.once('error', (e) => reject(failed(`cannot reach upstream ${target.host}:${target.port}: ${e.message}`, e)));
    });
    if (target.tls === 'disable') return raw;
    raw.write(serializeSSLRequest());
    const answer = await new Promise<Buffer>((resolve, reject) => {
      raw.once('data', resolve);
      raw.once('close', () => reject(failed('upstream closed during TLS negotiation')));
    });
    // Exactly one byte: anything more would be plaintext injected before the handshake (CVE-2021-23222).
    if (answer.length !== 1 || answer[0] !== 0x53) {
      raw.destroy();
      throw failed(answer[0] === 0x4e ? 'upstream does not accept TLS but the resource requires it' : 'upstream sent an invalid answer to SSLRequest');
    }
    const secure = tlsConnect({
      socket: raw,
      servername: /^[\d.]+$|:/.test(target.host) ? undefined : target.host,
      rejectUnauthorized: target.tls === 'verify-full',
      ...(target.ca ? { ca: target.ca } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', (e) => reject(failed(`upstream TLS failed: ${e.message}`, e)));
    });
    secure.setNoDelay(true);
    // Errors of the raw socket surface on the TLS socket, whose owner handles them.
    raw.on('error', () => {});
    return secure;
  } catch (e) {
    raw.destroy();
    throw e;
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

/** Answer one authentication request the way the server asks; returns the SCRAM exchange in progress. */
async function authenticateUpstream(
  socket: Socket | TLSSocket, target: UpstreamTarget, req: ReturnType<typeof parseAuthRequest>, scram: ScramClientExchange | null,
): Promise<ScramClientExchange | null> {
  if (req.code === AuthCode.Ok) return scram;
  if (req.code === AuthCode.CleartextPassword) {
    socket.write(serializePassword(await target.password()));
  } else if (req.code === AuthCode.MD5Password && 'salt' in req) {
    const pw = await target.password();
    const inner = createHash('md5').update(pw + target.user).digest('hex');
    socket.write(serializePassword('md5' + createHash('md5').update(inner).update(req.salt).digest('hex')));
  } else if (req.code === AuthCode.SASL && 'mechanisms' in req) {
    if (!req.mechanisms.includes(SCRAM_SHA_256)) throw failed(`upstream offers no supported SASL mechanism (${req.mechanisms.join(', ')})`);
    const exchange = new ScramClientExchange(await target.password());
    socket.write(serializeSASLInitialResponse(SCRAM_SHA_256, exchange.clientFirstMessage()));
    return exchange;
  } else if (req.code === AuthCode.SASLContinue && 'data' in req && scram) {
    socket.write(serializeSASLResponse(await scram.clientFinalMessage(req.data)));
  } else if (req.code === AuthCode.SASLFinal && 'data' in req && scram) {
    scram.verifyServerFinal(req.data);
  } else {
    throw failed(`upstream asks for an unsupported authentication method (${req.code})`);
  }
  return scram;
}

export async function connectUpstream(target: UpstreamTarget, outerSignal?: AbortSignal): Promise<UpstreamConnection> {
  const signal = outerSignal ? AbortSignal.any([outerSignal, AbortSignal.timeout(target.timeoutMs)]) : AbortSignal.timeout(target.timeoutMs);
  const socket = await openTransport(target, signal);
  const abort = () => socket.destroy();
  signal.addEventListener('abort', abort, { once: true });
  const reader = new MessageReader(socket, MAX_HANDSHAKE_MESSAGE);
  try {
    socket.write(serializeStartup({ ...target.params, user: target.user, database: target.database }));
    let scram: ScramClientExchange | null = null;
    let pid = 0;
    let key: Buffer | null = null;
    const greeting: Buffer[] = [];
    const parameters = new Map<string, string>();
    for (;;) {
      const { type, body } = await reader.readTyped();
      switch (type) {
        case Backend.Authentication:
          scram = await authenticateUpstream(socket, target, parseAuthRequest(body), scram);
          break;
        case Backend.ErrorResponse: {
          throw new UpstreamRefusal(parseErrorFields(body, 0, body.length));
        }
        case Backend.BackendKeyData:
          ({ pid, key } = parseBackendKeyData(body));
          break;
        case Backend.ParameterStatus: {
          const { name, value } = parseParameterStatus(body, 0, body.length);
          parameters.set(name, value);
          greeting.push(frame(type, body));
          break;
        }
        case Backend.NoticeResponse:
          greeting.push(frame(type, body));
          break;
        case Backend.NegotiateProtocolVersion:
          // We ask for 3.0 with no options, so there is nothing to downgrade; tolerate it.
          break;
        case Backend.ReadyForQuery: {
          if (!key) throw failed('upstream sent no BackendKeyData');
          const leftover = reader.detach();
          return { socket, pid, key, greeting, parameters, ready: frame(type, body), leftover };
        }
        default:
          throw failed(`upstream sent an unexpected message '${String.fromCharCode(type)}' during login`);
      }
    }
  } catch (e) {
    reader.detach();
    socket.destroy();
    if (signal.aborted && !isAirlockError(e)) throw failed(outerSignal?.aborted ? 'upstream login aborted' : 'upstream login timed out');
    if (e instanceof PeerClosed) throw failed('upstream closed the connection during login');
    if (isAirlockError(e, ErrorCodes.UPSTREAM_FAILED)) throw e;
    throw failed(`upstream login failed: ${(e as Error).message}`, e);
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

/** Forward a cancel to the upstream server with its own key (fire and forget, bounded). */
export async function sendUpstreamCancel(target: Pick<UpstreamTarget, 'host' | 'port' | 'tls' | 'ca'>, pid: number, key: Buffer): Promise<void> {
  const socket = await openTransport(target, AbortSignal.timeout(5000));
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => socket.destroy(), 5000);
    socket.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    socket.on('error', () => {});
    socket.end(serializeCancelRequest(pid, key));
  });
}

export { serializeTerminate };
