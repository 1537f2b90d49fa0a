/**
 * Stage 1, handleStartup: the untyped first messages. SSLRequest (TLS when configured),
 * GSSENCRequest (refused with 'N'), CancelRequest (matched and forwarded, no reply), and the
 * StartupMessage, whose user, replication flag and protocol options are checked here. With
 * TLS configured, a client that did not ask for it is refused unless `allowPlaintext`.
 */
import { TLSSocket, type SecureContext } from 'node:tls';
import { AirlockError, ErrorCodes } from '../../../core/errors.ts';
import type { AuditRecorder } from '../../../core/plugin.ts';
import type { CancelRegistry } from '../cancel-registry.ts';
import { ProtocolViolation } from '../wire/buffer-reader.ts';
import { serializeNegotiateProtocolVersion } from '../wire/backend.ts';
import { parseStartupRequest, type StartupRequest } from '../wire/frontend.ts';
import { MessageReader } from '../wire/message-reader.ts';
import { MAX_HANDSHAKE_MESSAGE, Refusal, type Handshake } from './handshake.ts';

export type Startup = Extract<StartupRequest, { kind: 'startup' }>;

export interface StartupDeps {
  secureContext: SecureContext | null;
  allowPlaintext: boolean;
  cancels: CancelRegistry;
  audit: AuditRecorder;
}

/** The StartupMessage, or null when the connection was a cancel request (already handled). */
export async function handleStartup(h: Handshake, deps: StartupDeps): Promise<Startup | null> {
  for (;;) {
    const req = parseStartupRequest((await h.reader.readUntyped()).body);
    if (req.kind === 'ssl' || req.kind === 'gssenc') {
      negotiateEncryption(h, req.kind, deps.secureContext);
      continue;
    }
    if (req.kind === 'cancel') {
      // libpq before 17 sends cancels in plaintext even when the session is on TLS: allowed.
      if (!deps.cancels.cancel(req.pid, req.key)) {
        deps.audit.authFailed({ source: h.source, code: ErrorCodes.BAD_CREDENTIAL, reason: 'cancel request with an unknown key' });
      }
      h.socket.destroy(); // the protocol sends no reply to a cancel request
      return null;
    }
    checkStartup(h, req, deps);
    return req;
  }
}

function negotiateEncryption(h: Handshake, kind: 'ssl' | 'gssenc', secureContext: SecureContext | null): void {
  if (h.socket !== h.raw) throw new ProtocolViolation('encryption negotiated twice');
  // Bytes already sent after the request would bypass TLS (CVE-2021-23214): refuse.
  if (h.reader.pending > 0) throw new ProtocolViolation('unencrypted data after SSLRequest');
  if (kind === 'gssenc' || secureContext === null) {
    h.raw.write('N');
    return;
  }
  h.raw.write('S');
  h.reader.detach();
  const secure: TLSSocket = new TLSSocket(h.raw, { isServer: true, secureContext });
  secure.on('error', () => {});
  h.socket = secure;
  h.reader = new MessageReader(secure, MAX_HANDSHAKE_MESSAGE);
  secure.resume();
}

function checkStartup(h: Handshake, startup: Startup, deps: StartupDeps): void {
  h.user = startup.params.get('user');
  if (deps.secureContext !== null && h.socket === h.raw && !deps.allowPlaintext) {
    const message = 'airlock: this gateway requires TLS: connect with sslmode=require (plaintext connections are refused)';
    throw new Refusal(new AirlockError(ErrorCodes.BAD_REQUEST, 'plaintext connection refused: TLS is required'), h.user, undefined, { severity: 'FATAL', code: '28000', message });
  }
  if (!h.user) throw new Refusal(new AirlockError(ErrorCodes.BAD_REQUEST, 'no user name specified: use the grant id'), undefined, undefined);
  const replication = startup.params.get('replication');
  if (replication !== undefined && !['false', 'off', 'no', '0'].includes(replication.toLowerCase())) {
    throw new Refusal(new AirlockError(ErrorCodes.BAD_REQUEST, 'replication connections are not supported'), h.user, undefined);
  }
  if (startup.minor > 0 || startup.protocolOptions.length > 0) {
    h.socket.write(serializeNegotiateProtocolVersion(0, startup.protocolOptions));
  }
}
