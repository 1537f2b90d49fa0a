/**
 * State shared by the stages of one client connection's handshake (front-door.ts), and the
 * two ways a stage ends it early: a Refusal (FATAL + `auth.failed`) or an EarlyClose (the
 * core ended the session while the upstream login ran).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { AirlockError } from '../../../core/errors.ts';
import type { ErrorFields } from '../wire/backend.ts';
import type { MessageReader } from '../wire/message-reader.ts';

export interface Handshake {
  readonly raw: Socket;
  /** The raw socket, or the TLS socket over it once negotiated. */
  socket: Socket | TLSSocket;
  reader: MessageReader;
  /** `address:port`, for records (the recorder's failure limiter counts by its address part). */
  readonly source: string;
  /** The user name of the startup message (the claimed grant id). */
  user: string | undefined;
  /** Set when the core ends the session before the relay has started. */
  earlyClose: ErrorFields | undefined;
}

/** A refusal already decided: what to tell the client and what to record. */
export class Refusal extends Error {
  constructor(
    readonly error: AirlockError,
    readonly claimedId: string | undefined,
    readonly resource: string | undefined,
    /** Exact fields to send instead of the ones sqlstate.ts derives from `error`. */
    readonly fields?: ErrorFields | ReadonlyMap<string, string>,
  ) {
    super(error.message);
  }
}

export class EarlyClose extends Error {}

/** PostgreSQL's own limit for the startup packet; SASL messages are far smaller. */
export const MAX_HANDSHAKE_MESSAGE = 10_000;
