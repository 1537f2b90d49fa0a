/**
 * Stage 2, authenticate: SCRAM-SHA-256 against the grant's verifier, or against a decoy so an
 * unknown id looks exactly like a wrong password. Over TLS SCRAM-SHA-256-PLUS is offered too,
 * bound (`tls-server-end-point`) to airlock's own certificate, so clients that require
 * channel binding can connect; plain SCRAM-SHA-256 stays offered for the others.
 */
import type { TLSSocket } from 'node:tls';
import { AirlockError, ErrorCodes, isAirlockError } from '../../../core/errors.ts';
import type { Grant, ScramVerifier } from '../../../core/plugin.ts';
import type { PostgresContext, PostgresScope } from '../config.ts';
import { tlsServerEndPoint } from '../scram/channel-binding.ts';
import { SCRAM_SHA_256, SCRAM_SHA_256_PLUS } from '../scram/common.ts';
import { ScramServerExchange } from '../scram/server.ts';
import { ProtocolViolation } from '../wire/buffer-reader.ts';
import { serializeAuthSASL, serializeAuthSASLContinue } from '../wire/backend.ts';
import { parseSASLInitialResponse } from '../wire/frontend.ts';
import { Frontend } from '../wire/protocol.ts';
import { Refusal, type Handshake } from './handshake.ts';

export interface Authenticated {
  grant: Grant<PostgresScope>;
  /** The server-final-message, sent with AuthenticationOk once the upstream is ready. */
  serverFinal: Buffer;
}

/** Channel binding data for this connection, or null when it is not on TLS. */
function endPointOf(h: Handshake): Buffer | null {
  if (h.socket === h.raw) return null;
  const cert = (h.socket as TLSSocket).getCertificate();
  if (cert === null || !('raw' in cert) || !Buffer.isBuffer(cert.raw)) return null;
  try {
    return tlsServerEndPoint(cert.raw);
  } catch {
    return null; // a certificate we cannot bind to: offer plain SCRAM only
  }
}

/**
 * No failure budget is consulted here: a secret that verifies logs in from any address (one
 * NAT must not shut out a team). A failure past its address's budget is answered as rate
 * limited when the handshake fails (front-door.ts, through the recorder's one limiter).
 */
export async function authenticate(h: Handshake, ctx: PostgresContext): Promise<Authenticated> {
  const user = h.user ?? '';
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
  const endPoint = endPointOf(h);
  h.socket.write(serializeAuthSASL(endPoint ? [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] : [SCRAM_SHA_256]));
  const first = await h.reader.readTyped();
  if (first.type !== Frontend.Password) throw new ProtocolViolation('expected SASLInitialResponse');
  const initial = parseSASLInitialResponse(first.body);
  if (initial.mechanism !== SCRAM_SHA_256 && !(initial.mechanism === SCRAM_SHA_256_PLUS && endPoint)) {
    throw new ProtocolViolation(`unsupported SASL mechanism "${initial.mechanism}"`);
  }
  const exchange = new ScramServerExchange(verifier, { mechanism: initial.mechanism, endPoint });
  h.socket.write(serializeAuthSASLContinue(exchange.serverFirstMessage(initial.data)));
  const final = await h.reader.readTyped();
  if (final.type !== Frontend.Password) throw new ProtocolViolation('expected SASLResponse');
  const serverFinal = exchange.verifyClientFinal(final.body);
  if (lookupError) throw new Refusal(lookupError, user, undefined);
  if (!serverFinal || !grant) throw new Refusal(new AirlockError(ErrorCodes.BAD_CREDENTIAL, 'wrong password for grant'), user, grant?.resource);
  return { grant, serverFinal };
}
