/**
 * The relay of one authenticated session: client bytes go upstream and upstream bytes go to
 * the client, whole chunks at a time and unmodified; frame splitters beside the streams let
 * the statement tracker see every message. Two rules make the audit hold:
 *  - a chunk carrying statements is forwarded only after their `pg.query` records are in the
 *    spool: right after the turn's spool write that carries them (`whenSpooled`);
 *  - upstream bytes are released to the client only once every statement recorded so far is
 *    durable (`durable`; immediate in buffered mode), so a client never sees the result of a
 *    statement whose record could still be lost. Upstream work overlaps the fsync.
 * A full socket buffer on one side pauses the other side (backpressure, no unbounded queues).
 */
import type { Duplex } from 'node:stream';
import type { AuditRecorder, Session } from '../../core/plugin.ts';
import { AirlockError, ErrorCodes, isAirlockError } from '../../core/errors.ts';
import { recordRefusal } from './audit-step.ts';
import { LEXING_REFUSAL_SQLSTATE } from './lexing-guard.ts';
import { fatalFor } from './sqlstate.ts';
import { StatementRefused, StatementTracker } from './statement-tracker.ts';
import type { SessionSettings } from './session-settings.ts';
import { serializeError, type ErrorFields } from './wire/backend.ts';
import { FrameSplitter } from './wire/frame-splitter.ts';
import { serializeTerminate } from './wire/frontend.ts';
import { PauseReason, Valve } from './valve.ts';

/** Backend messages can be far larger than client ones (big rows); the protocol's own cap. */
const MAX_BACKEND_MESSAGE = 1024 * 1024 * 1024;
/** After asking a socket to close, destroy it if it has not finished within this time. */
const CLOSE_GRACE_MS = 250;

export interface RelayOptions {
  client: Duplex;
  upstream: Duplex;
  session: Session;
  audit: AuditRecorder;
  maxMessageBytes: number;
  recordParameters: boolean;
  /** The guardrail's SELECT-only rules apply. */
  readOnly: boolean;
  /** The session's settings, from the upstream greeting's ParameterStatus values. */
  settings: SessionSettings;
  /** Cancel the statement running upstream (a session cut mid-query must not leave it running). */
  cancelUpstream: () => void;
  /** Called once when the relay has finished (both sides closed). */
  onDone: () => void;
  log: { warn(obj: object, msg: string): void };
}

export class Relay {
  private readonly tracker: StatementTracker;
  private readonly clientSplitter: FrameSplitter;
  private readonly upstreamSplitter: FrameSplitter;
  private readonly clientValve: Valve;
  private readonly upstreamValve: Valve;
  private readonly toClient: Buffer[] = [];
  private clientBusy = false;
  private closed = false;

  constructor(private readonly o: RelayOptions) {
    this.tracker = new StatementTracker({
      session: o.session,
      audit: o.audit,
      recordParameters: o.recordParameters,
      readOnly: o.readOnly,
      settings: o.settings,
      onAuditFailure: (e) => this.auditFailed(e),
      // Reported mid-chunk: refuse once the splitter is done with it.
      onLexingChanged: (reason) =>
        queueMicrotask(() => {
          this.tracker.closeOutcomes();
          this.refuse(reason, recordRefusal(o.audit, o.session, 'policy.violation', {}, reason));
        }),
    });
    this.clientSplitter = new FrameSplitter(this.tracker.frontend, o.maxMessageBytes);
    this.upstreamSplitter = new FrameSplitter(this.tracker.backend, MAX_BACKEND_MESSAGE);
    this.clientValve = new Valve(o.client);
    this.upstreamValve = new Valve(o.upstream);
  }

  /** Start relaying, first feeding bytes that arrived during the handshake. */
  start(clientLeftover: Buffer[], upstreamLeftover: Buffer[]): void {
    const { client, upstream } = this.o;
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => this.fromUpstream(chunk));
    client.on('error', () => this.end('client'));
    client.on('close', () => this.end('client'));
    upstream.on('error', (e: Error) => this.end('error', `upstream connection error: ${e.message}`));
    upstream.on('close', () => this.upstreamClosed());
    for (const c of clientLeftover) this.fromClient(c);
    for (const c of upstreamLeftover) this.fromUpstream(c);
    client.resume();
    upstream.resume();
  }

  // ---------------------------------------------------------------------------------------
  // Client → upstream
  // ---------------------------------------------------------------------------------------

  /**
   * Inspect the chunk (its statements' records are written as the tracker meets them). A chunk
   * that wrote records is held until this turn's spool write carries them and forwarded right
   * after it, in the same turn (`whenSpooled`); chunks behind it in the turn wait with it, in
   * order. One spool write per turn serves every session; no promise per statement, no pause.
   */
  private fromClient(chunk: Buffer): void {
    if (this.closed || this.refusing) return;
    try {
      this.clientSplitter.push(chunk);
    } catch (e) {
      this.fail(e);
      return;
    }
    const recorded = this.tracker.takeChunkRecords();
    if (recorded === 'failed') return this.auditFailed(undefined);
    if (this.heldForSpool !== null) {
      this.heldForSpool.push(chunk);
      return;
    }
    if (recorded === 'none') return this.writeUpstream(chunk);
    this.heldForSpool = [chunk];
    this.o.audit.whenSpooled(this.releaseHeld);
  }

  /** Client chunks waiting for this turn's spool write, in arrival order (null: none). */
  private heldForSpool: Buffer[] | null = null;

  private readonly releaseHeld = (error: Error | undefined): void => {
    const held = this.heldForSpool;
    this.heldForSpool = null;
    if (error !== undefined) return this.auditFailed(error);
    if (this.closed || held === null) return;
    for (const chunk of held) this.writeUpstream(chunk);
  };

  private upstreamDrainArmed = false;
  private clientDrainArmed = false;

  private writeUpstream(chunk: Buffer): void {
    if (!this.o.upstream.write(chunk) && !this.upstreamDrainArmed) {
      this.upstreamDrainArmed = true;
      this.clientValve.pause(PauseReason.PeerFull);
      this.o.upstream.once('drain', () => {
        this.upstreamDrainArmed = false;
        this.clientValve.resume(PauseReason.PeerFull);
      });
    }
    if (this.tracker.terminated) this.end('client');
  }

  // ---------------------------------------------------------------------------------------
  // Upstream → client
  // ---------------------------------------------------------------------------------------

  private fromUpstream(chunk: Buffer): void {
    if (this.closed || this.refusing) return;
    if (this.clientBusy) {
      this.toClient.push(chunk);
      return;
    }
    try {
      this.upstreamSplitter.push(chunk);
    } catch (e) {
      this.fail(new AirlockError(ErrorCodes.UPSTREAM_FAILED, `upstream protocol error: ${(e as Error).message}`));
      return;
    }
    const settled = this.tracker.pendingSettled();
    if (settled === null) {
      this.writeClient(chunk);
      return;
    }
    this.clientBusy = true;
    this.upstreamValve.pause(PauseReason.Durable);
    settled.then(
      () => {
        if (this.closed) return;
        this.writeClient(chunk);
        this.clientBusy = false;
        this.upstreamValve.resume(PauseReason.Durable);
        while (!this.clientBusy && !this.closed && this.toClient.length > 0) this.fromUpstream(this.toClient.shift()!);
        if (this.upstreamGone && !this.clientBusy) this.upstreamClosed();
      },
      (e: unknown) => this.auditFailed(e),
    );
  }

  private writeClient(chunk: Buffer): void {
    if (!this.o.client.write(chunk) && !this.clientDrainArmed) {
      this.clientDrainArmed = true;
      this.upstreamValve.pause(PauseReason.PeerFull);
      this.o.client.once('drain', () => {
        this.clientDrainArmed = false;
        this.upstreamValve.resume(PauseReason.PeerFull);
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Ending
  // ---------------------------------------------------------------------------------------

  private auditFailed(e: unknown): void {
    this.fail(isAirlockError(e) ? e : new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'audit spool unavailable: statement not run'));
  }

  /**
   * The upstream socket closed. Whatever it sent before is passed on first (it may end with
   * the server's own FATAL, e.g. after pg_terminate_backend); then the client connection ends,
   * with airlock's FATAL only when the server sent none.
   */
  private upstreamGone = false;

  private upstreamClosed(): void {
    this.upstreamGone = true;
    if (this.closed || this.clientBusy || this.toClient.length > 0) {
      if (this.closed) this.destroyLater();
      return;
    }
    if (this.tracker.terminated) return this.end('client');
    const fatal = this.tracker.serverFatal;
    if (fatal) return this.end('error', undefined, { upstreamFatal: fatal });
    this.end('error', 'upstream closed the connection');
  }

  /**
   * A statement or setting refused by policy: stop both directions now, and once the refusal
   * record is durable tell the client with a FATAL and close this session only.
   */
  private refuse(reason: string, recorded: Promise<void>, sqlstate: string = LEXING_REFUSAL_SQLSTATE): void {
    if (this.closed || this.refusing) return;
    this.refusing = true;
    this.o.client.pause();
    this.o.upstream.pause();
    const fields: ErrorFields = { severity: 'FATAL', code: sqlstate, message: `airlock: ${reason}` };
    void recorded.finally(() => this.terminate(fields, 'policy', { error: fields.message, sqlstate: fields.code }));
  }

  private refusing = false;

  /** A protocol or audit failure: tell the client with a FATAL error and close this session only. */
  private fail(e: unknown): void {
    if (this.closed) return;
    if (e instanceof StatementRefused) return this.refuse(e.reason, e.done, e.sqlstate);
    const fields = fatalFor(isAirlockError(e) && e.code !== ErrorCodes.INTERNAL ? e : new AirlockError(ErrorCodes.INTERNAL, 'relay failure'));
    this.o.log.warn({ err: (e as Error).message, session: this.o.session.id }, 'postgres session closed on error');
    this.terminate(fields, 'error', { error: fields.message, sqlstate: fields.code });
  }

  /** Ended by the core (expiry, revocation, shutdown): FATAL to the client, close both sides. */
  closeFromCore(fields: ErrorFields): void {
    this.terminate(fields, null, undefined);
  }

  private terminate(fields: ErrorFields, reason: 'error' | 'policy' | null, data: Record<string, unknown> | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.tracker.closeOutcomes();
    const { client, upstream } = this.o;
    // A FATAL can only be understood between frames; mid-frame the client just sees the close.
    if (this.upstreamSplitter.atBoundary && !this.clientBusy) client.end(serializeError(fields));
    else client.end();
    upstream.end(serializeTerminate());
    if (this.tracker.inFlight > 0) this.o.cancelUpstream();
    this.destroyLater();
    if (reason !== null) this.o.session.end(reason, { ...data, inFlight: this.tracker.inFlight });
  }

  private end(reason: 'client' | 'error', message?: string, data?: Record<string, unknown>): void {
    if (this.closed) {
      this.destroyLater();
      return;
    }
    this.closed = true;
    this.tracker.closeOutcomes();
    const { client, upstream } = this.o;
    if (reason === 'error' && message && this.upstreamSplitter.atBoundary && !this.clientBusy && !client.destroyed) {
      client.end(serializeError({ severity: 'FATAL', code: '08006', message: `airlock: ${message}` }));
    } else {
      client.end();
    }
    if (!upstream.destroyed) {
      if (this.tracker.terminated) upstream.end();
      else upstream.end(serializeTerminate());
      if (reason === 'client' && this.tracker.inFlight > 0) this.o.cancelUpstream();
    }
    this.destroyLater();
    this.o.session.end(reason, reason === 'error' ? { ...(message ? { error: message } : {}), ...data, inFlight: this.tracker.inFlight } : undefined);
  }

  private destroyTimer: NodeJS.Timeout | null = null;

  private destroyLater(): void {
    if (this.destroyTimer) return;
    const { client, upstream } = this.o;
    // Give the FATAL a moment to flush, but never let a client that stopped reading keep the socket open.
    this.destroyTimer = setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, CLOSE_GRACE_MS);
    this.destroyTimer.unref();
    let remaining = 2;
    const done = () => {
      if (--remaining === 0) {
        if (this.destroyTimer) clearTimeout(this.destroyTimer);
        this.o.onDone();
      }
    };
    if (client.destroyed) done();
    else client.once('close', done);
    if (upstream.destroyed) done();
    else upstream.once('close', done);
  }
}
