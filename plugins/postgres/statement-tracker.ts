/**
 * Follows one session's conversation to audit it: every simple Query, every Execute of the
 * extended protocol and every FunctionCall becomes a `pg.query` record (with its SQL) written
 * before the statement is forwarded; its outcome (rows, command tag, error) becomes a
 * `pg.result` when the server answers, folded into the session's next `pg.query` as
 * `done` when one follows soon (outcome-fold.ts). Responses are matched to messages in order,
 * the way the protocol defines: ParseComplete / BindComplete / CloseComplete answer Parse /
 * Bind / Close, CommandComplete / EmptyQueryResponse / PortalSuspended / ErrorResponse end
 * an Execute, ReadyForQuery ends a Query, a FunctionCall or a Sync, and an error in the
 * extended protocol skips everything up to the next Sync.
 *
 * Statement text is read with the session's client_encoding (session-settings.ts); prepared
 * statements count only once the server confirmed them (prepared-statements.ts); statements
 * that would change how the server lexes SQL are refused (lexing-guard.ts).
 *
 * Hot path: one record and two promise reactions per statement on a busy session (its
 * outcome rides on the next one); DataRow and CopyData bodies are never read (the frame
 * splitter skips them).
 */
import { performance } from 'node:perf_hooks';
import { recordRefusal, recordStatement } from './audit-step.ts';
import { OutcomeFolder } from './outcome-fold.ts';
import type { AuditExchange, AuditRecorder, Session } from '../../core/plugin.ts';
import { SessionGuard } from './guard/index.ts';
import { lexingChangeIn, LEXING_REFUSAL_SQLSTATE } from './lexing-guard.ts';
import { PreparedStatements, sqlEffectsOf, type PreparedOp, type Resolution } from './prepared-statements.ts';
import type { RecordedText, SessionSettings } from './session-settings.ts';
import { splitStatements } from './split-statements.ts';
import { ProtocolViolation } from './wire/buffer-reader.ts';
import type { FrameSink } from './wire/frame-splitter.ts';
import { parseBind, parseExecute, parseFunctionCall, parseParse, parseQuery, parseTarget } from './wire/frontend.ts';
import { parseCommandComplete, parseErrorFields, parseParameterStatus } from './wire/backend.ts';
import { Backend, Frontend, RELAY_BACKEND_TYPES, RELAY_FRONTEND_TYPES } from './wire/protocol.ts';

export type ChunkRecords = 'none' | 'written' | 'failed';

type PendingKind = 'query' | 'execute' | 'call' | 'sync' | 'parse' | 'bind' | 'close' | 'describe';

interface Pending {
  kind: PendingKind;
  /** The statement's audited exchange (its pg.query, whose seq the pg.result names), when it has one. */
  exchange: AuditExchange | undefined;
  startedAt: number;
  rows: number;
  commands: string[] | undefined;
  error: { code: string; message: string } | undefined;
  /** Parse / Bind / Close / Query: what it does to prepared statements. */
  op: PreparedOp | undefined;
  /** Execute: its portal, and whether the statement it runs was still open when recorded. */
  portal: string | undefined;
  unconfirmed: boolean;
}

/** A statement the gateway refuses to forward; the session ends (its record is written). */
export class StatementRefused extends Error {
  constructor(
    readonly reason: string,
    readonly done: Promise<void>,
    /** SQLSTATE for the client: 42501 insufficient_privilege, 42601 when airlock cannot parse it. */
    readonly sqlstate: string = LEXING_REFUSAL_SQLSTATE,
  ) {
    super(reason);
  }
}

/** Longest SQL text kept in a record; longer text is cut (and flagged) so one statement cannot bloat the audit. */
const MAX_RECORDED_SQL = 64 * 1024;

function clip(t: RecordedText): Record<string, unknown> {
  const out: Record<string, unknown> = { sql: t.sql.length > MAX_RECORDED_SQL ? t.sql.slice(0, MAX_RECORDED_SQL) : t.sql };
  if (t.sqlBase64 !== undefined) out.sqlBase64 = t.sqlBase64.length > MAX_RECORDED_SQL ? t.sqlBase64.slice(0, MAX_RECORDED_SQL) : t.sqlBase64;
  if (t.encoding !== undefined) out.encoding = t.encoding;
  if (t.sql.length > MAX_RECORDED_SQL) out.truncated = true;
  return out;
}

export interface TrackerOptions {
  session: Session;
  audit: AuditRecorder;
  recordParameters: boolean;
  /** The level only reads: the guardrail's SELECT-only rules apply (the every-level rules always do). */
  readOnly: boolean;
  /** The session's settings, from the greeting's ParameterStatus values (client_encoding, standard_conforming_strings). */
  settings: SessionSettings;
  onAuditFailure: (e: unknown) => void;
  /** The server reported a setting the audit cannot follow; the relay ends the session. */
  onLexingChanged: (reason: string) => void;
}

export class StatementTracker {
  readonly settings: SessionSettings;
  private readonly prepared = new PreparedStatements();
  private readonly sqlGuard: SessionGuard;
  private readonly outcomes = new OutcomeFolder();
  private readonly queue: Pending[] = [];
  private head = 0;
  private dataRows = 0;
  /** Sync segments sent so far: an error skips the rest of its segment. */
  private segment = 0;
  private clientTerminated = false;
  /** The server's own FATAL, if it sent one (the client has then been told already). */
  private fatal: { code: string; message: string } | undefined;

  /** What the chunk being inspected wrote: no statement record, records, or one that could not be written. */
  private chunkRecords: ChunkRecords = 'none';
  /** The newest statement's `settled` (request durable), and whether it has resolved. */
  private latestSettled: Promise<void> | null = null;
  private latestSettledDone = true;

  constructor(private readonly o: TrackerOptions) {
    this.sqlGuard = new SessionGuard(o.readOnly);
    this.settings = o.settings;
  }

  get terminated(): boolean {
    return this.clientTerminated;
  }

  /** The FATAL ErrorResponse the server sent before closing, if any. */
  get serverFatal(): { code: string; message: string } | undefined {
    return this.fatal;
  }

  /**
   * What the client chunk just inspected recorded, and reset: `written` means it is forwarded
   * only once its records are in the spool (`AuditRecorder.whenSpooled`), `failed` that one
   * could not be written and nothing of the chunk may be forwarded.
   */
  takeChunkRecords(): ChunkRecords {
    const r = this.chunkRecords;
    this.chunkRecords = 'none';
    return r;
  }

  /** What every result seen so far waits on (its statement's record settled), or null when nothing does. */
  pendingSettled(): Promise<void> | null {
    return this.latestSettledDone ? null : this.latestSettled;
  }

  /** Statements forwarded but not yet answered (for the session's closing record). */
  get inFlight(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) if (this.queue[i]!.exchange?.seq !== undefined) n++;
    return n;
  }

  // -------------------------------------------------------------------------------------
  // Records
  // -------------------------------------------------------------------------------------

  private request(data: Record<string, unknown>): AuditExchange {
    const done = this.outcomes.take();
    if (done !== undefined) data.done = done;
    const statement = recordStatement(this.o.audit, this.o.session, data);
    // The record is written synchronously (its seq is set) or not at all.
    if (statement.exchange.seq === undefined) this.chunkRecords = 'failed';
    else if (this.chunkRecords === 'none') this.chunkRecords = 'written';
    // A failed spool write reaches the relay through whenSpooled (it holds the chunk until
    // then), so `ready` needs no reaction of its own here.
    const settled = statement.settled;
    this.latestSettled = settled;
    this.latestSettledDone = false;
    settled.then(() => {
      if (this.latestSettled === settled) this.latestSettledDone = true;
    }, this.o.onAuditFailure);
    return statement.exchange;
  }

  private finish(p: Pending, extra?: Record<string, unknown>): void {
    // No exchange (Parse, Bind, …), or its request record could not be written.
    const seq = p.exchange?.seq;
    if (p.exchange === undefined || seq === undefined) return;
    const data: Record<string, unknown> = {
      query: seq,
      rows: p.rows,
      ms: Math.round((performance.now() - p.startedAt) * 1000) / 1000,
    };
    if (p.commands !== undefined) data.commands = p.commands;
    if (p.error !== undefined) data.error = p.error;
    if (p.unconfirmed) Object.assign(data, this.ranStatement(p.portal ?? ''));
    if (extra) Object.assign(data, extra);
    this.outcomes.park(p.exchange, data, p.error ? 'error' : 'ok');
  }

  /**
   * The session ends (or is refused): outcomes still parked are written as pg.result now,
   * before the session's last records, and any later one at once.
   */
  closeOutcomes(): void {
    this.outcomes.close();
  }

  /** For an Execute recorded while its statement was open: what the server really ran. */
  private ranStatement(portal: string): Record<string, unknown> {
    const p = this.prepared.confirmedPortal(portal);
    if (p?.text === undefined) return { sql: null, prepared: 'unknown' };
    return { ...clip(p.text), ...(p.statement !== '' ? { statement: p.statement } : {}) };
  }

  /** Refuse a statement that would change how the server lexes SQL: denied record, then the session ends. */
  private guard(text: RecordedText): void {
    const reason = lexingChangeIn(text.sql);
    if (reason === null) return;
    const why = `${reason} is not allowed through airlock (the audit could not follow SQL lexed that way)`;
    this.outcomes.close();
    throw new StatementRefused(why, recordRefusal(this.o.audit, this.o.session, 'pg.query', clip(text), why));
  }

  /**
   * The guardrail (guard/): the whole query text is decided before any of it is forwarded, so
   * one refused statement of a multi-statement query refuses all of it. A refusal is a
   * `pg.query` record with outcome denied naming the rule; then the session ends.
   */
  private decide(text: RecordedText): void {
    const d = this.sqlGuard.decide(text.sql);
    if (d.allowed) return;
    this.refuseStatement(d.message, d.rule, d.sqlstate, clip(text));
  }

  private refuseStatement(message: string, rule: string, sqlstate: string, data: Record<string, unknown>): never {
    this.outcomes.close();
    const recorded = recordRefusal(this.o.audit, this.o.session, 'pg.query', { ...data, rule, sqlstate }, message);
    throw new StatementRefused(message, recorded, sqlstate);
  }

  // -------------------------------------------------------------------------------------
  // Queue
  // -------------------------------------------------------------------------------------

  private enqueue(kind: PendingKind, exchange: AuditExchange | undefined, extra?: Partial<Pending>): void {
    this.queue.push({
      kind, exchange, startedAt: performance.now(), rows: 0, commands: undefined, error: undefined,
      op: undefined, portal: undefined, unconfirmed: false, ...extra,
    });
  }

  private peek(): Pending | undefined {
    return this.queue[this.head];
  }

  private shift(): Pending | undefined {
    const p = this.queue[this.head];
    if (p === undefined) return undefined;
    this.head++;
    // Empty: start over, so an idle session keeps none of its answered messages (nor their
    // exchanges). Otherwise compact now and then so a pipelining session's queue stays bounded.
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return p;
  }

  /** Answer the oldest pending message if it is of `kind` (ParseComplete, BindComplete, …). */
  private answer(kind: PendingKind): void {
    const p = this.peek();
    if (p?.kind !== kind) return;
    this.shift();
    if (p.op) this.prepared.settle(p.op, 'ok');
  }

  // -------------------------------------------------------------------------------------
  // Client → upstream
  // -------------------------------------------------------------------------------------

  private beginQuery(bytes: Buffer): void {
    const text = this.settings.text(bytes);
    this.guard(text);
    this.decide(text);
    const op: PreparedOp = { kind: 'query', segment: this.segment, effects: sqlEffectsOf(text.sql) };
    this.prepared.add(op);
    const statements = splitStatements(text.sql);
    if (statements.length === 1) {
      this.enqueue('query', this.request(clip(text)), { op });
      return;
    }
    // One record per statement for the reader, each with the whole text as received: the
    // split is the gateway's reading, the whole text is what the server got.
    const received = clip(text);
    let first: AuditExchange | undefined;
    statements.forEach((sql, index) => {
      const statement = this.request({ sql, batch: { index, of: statements.length }, received });
      first ??= statement;
    });
    this.enqueue('query', first, { op });
  }

  private beginParse(buf: Buffer, start: number, end: number): void {
    const { name, sql } = parseParse(buf, start, end);
    const text = this.settings.text(sql);
    this.guard(text);
    this.decide(text);
    this.sqlGuard.parsed(name);
    const op: PreparedOp = { kind: 'parse', segment: this.segment, name, text };
    this.prepared.add(op);
    this.enqueue('parse', undefined, { op });
  }

  private beginBind(buf: Buffer, start: number, end: number): void {
    const b = parseBind(buf, start, end, this.o.recordParameters, this.settings.paramText);
    const op: PreparedOp = { kind: 'bind', segment: this.segment, portal: b.portal, statement: b.statement, params: b.params };
    this.prepared.add(op);
    this.enqueue('bind', undefined, { op });
  }

  private beginExecute(buf: Buffer, start: number, end: number): void {
    const { portal } = parseExecute(buf, start, end);
    const r: Resolution = this.prepared.resolvePortal(portal, this.segment);
    const data: Record<string, unknown> = r.state === 'known' ? clip(r.text) : { sql: null, prepared: r.state };
    if (r.statement !== undefined && r.statement !== '') data.statement = r.statement;
    if (portal !== '') data.portal = portal;
    if (r.state === 'known' && r.params) data.params = r.params;
    this.enqueue('execute', this.request(data), { portal, unconfirmed: r.state === 'unconfirmed' });
  }

  private beginClose(buf: Buffer, start: number, end: number): void {
    const t = parseTarget(buf, start, end, 'Close');
    if (t.kind === 'S') this.sqlGuard.closed(t.name);
    const op: PreparedOp = { kind: 'close', segment: this.segment, target: t.kind, name: t.name };
    this.prepared.add(op);
    this.enqueue('close', undefined, { op });
  }

  /** A fast-path call names a function by oid only: under a SELECT-only level it could be any writing function. */
  private beginFunctionCall(oid: number): void {
    if (this.o.readOnly) {
      this.refuseStatement(`airlock guardrail "function-call": a protocol FunctionCall (oid ${oid}) is not allowed under a read-only level`, 'function-call', '42501', { sql: null, functionOid: oid });
    }
    this.enqueue('call', this.request({ sql: null, functionOid: oid }));
  }

  readonly frontend: FrameSink = {
    header: (type) => {
      if (!RELAY_FRONTEND_TYPES.has(type)) throw new ProtocolViolation(`unexpected message type 0x${type.toString(16)} from client`);
      switch (type) {
        case Frontend.Sync:
          this.enqueue('sync', undefined);
          this.segment++;
          return false;
        case Frontend.Terminate:
          this.clientTerminated = true;
          return false;
        case Frontend.Query:
        case Frontend.Parse:
        case Frontend.Bind:
        case Frontend.Execute:
        case Frontend.Close:
        case Frontend.Describe:
        case Frontend.FunctionCall:
          return true;
        default:
          return false; // CopyData, CopyDone, CopyFail, Flush: passed through unread
      }
    },
    body: (type, buf, start, end) => {
      switch (type) {
        case Frontend.Query:
          return this.beginQuery(parseQuery(buf, start, end));
        case Frontend.Parse:
          return this.beginParse(buf, start, end);
        case Frontend.Bind:
          return this.beginBind(buf, start, end);
        case Frontend.Execute:
          return this.beginExecute(buf, start, end);
        case Frontend.Close:
          return this.beginClose(buf, start, end);
        case Frontend.Describe:
          parseTarget(buf, start, end, 'Describe'); // validated; answered by RowDescription / NoData
          return this.enqueue('describe', undefined);
        case Frontend.FunctionCall:
          return this.beginFunctionCall(parseFunctionCall(buf, start, end).oid);
      }
    },
  };

  // -------------------------------------------------------------------------------------
  // Upstream → client
  // -------------------------------------------------------------------------------------

  private commandComplete(buf: Buffer, start: number, end: number): void {
    const { tag, rows } = parseCommandComplete(buf, start, end);
    // SHOW, FETCH-less tags, …: no count in the tag, so count the rows the server sent.
    const count = rows ?? this.dataRows;
    this.dataRows = 0;
    const p = this.firstStatement();
    if (!p) return;
    const command = tag.split(' ', 1)[0]!;
    if (p.kind === 'execute') {
      p.rows = count;
      p.commands = [command];
      this.shift();
      this.finish(p);
      return;
    }
    p.rows += count;
    (p.commands ??= []).push(command);
    this.prepared.commandDone(p.op, tag);
  }

  private errorResponse(buf: Buffer, start: number, end: number): void {
    const f = parseErrorFields(buf, start, end);
    const error = { code: f.get('C') ?? '', message: f.get('M') ?? '' };
    const severity = f.get('V') ?? f.get('S');
    if (severity === 'FATAL' || severity === 'PANIC') this.fatal = error;
    this.dataRows = 0;
    const p = this.peek();
    if (!p || p.kind === 'sync') return;
    if (p.kind === 'query' || p.kind === 'call') {
      p.error ??= error;
      return;
    }
    // An extended-protocol message failed: the server skips everything up to the next Sync.
    this.shift();
    if (p.op) this.prepared.settle(p.op, 'failed');
    if (p.kind === 'execute') {
      p.error = error;
      this.finish(p);
    }
    for (let q = this.peek(); q !== undefined && q.kind !== 'sync'; q = this.peek()) {
      this.shift();
      if (q.op) this.prepared.settle(q.op, 'skipped');
      this.finish(q, { skipped: true });
    }
  }

  private readyForQuery(status: number): void {
    this.dataRows = 0;
    for (let p = this.shift(); p !== undefined; p = this.shift()) {
      if (p.op) this.prepared.settle(p.op, p.kind === 'query' ? 'ok' : 'skipped');
      if (p.kind === 'query' || p.kind === 'call') {
        this.finish(p);
        break;
      }
      if (p.kind === 'sync') break;
      this.finish(p, { skipped: true });
    }
    if (status === 0x49 /* 'I': no transaction, so no portal survives */) this.prepared.transactionEnded();
  }

  private parameterStatus(buf: Buffer, start: number, end: number): void {
    const { name, value } = parseParameterStatus(buf, start, end);
    this.settings.set(name, value);
    if (!this.settings.lexesLikeGateway) this.o.onLexingChanged(`the server reports ${name} = ${value}`);
  }

  readonly backend: FrameSink = {
    header: (type) => {
      if (!RELAY_BACKEND_TYPES.has(type)) throw new ProtocolViolation(`unexpected message type 0x${type.toString(16)} from upstream`);
      switch (type) {
        case Backend.DataRow:
          this.dataRows++;
          return false;
        case Backend.ParseComplete:
          this.answer('parse');
          return false;
        case Backend.BindComplete:
          this.answer('bind');
          return false;
        case Backend.CloseComplete:
          this.answer('close');
          return false;
        case Backend.RowDescription:
        case Backend.NoData:
          this.answer('describe');
          return false;
        case Backend.CommandComplete:
        case Backend.ErrorResponse:
        case Backend.ReadyForQuery:
        case Backend.EmptyQueryResponse:
        case Backend.PortalSuspended:
        case Backend.ParameterStatus:
          return true;
        default:
          return false;
      }
    },
    body: (type, buf, start, end) => {
      switch (type) {
        case Backend.CommandComplete:
          return this.commandComplete(buf, start, end);
        case Backend.ErrorResponse:
          return this.errorResponse(buf, start, end);
        case Backend.ReadyForQuery:
          return this.readyForQuery(end > start ? buf[start]! : 0);
        case Backend.ParameterStatus:
          return this.parameterStatus(buf, start, end);
        case Backend.EmptyQueryResponse: {
          const p = this.firstStatement();
          if (p?.kind === 'execute') {
            this.shift();
            this.finish(p);
          }
          return;
        }
        case Backend.PortalSuspended: {
          const p = this.firstStatement();
          if (p?.kind === 'execute') {
            p.rows = this.dataRows;
            this.dataRows = 0;
            this.shift();
            this.finish(p, { suspended: true });
          }
          return;
        }
      }
    },
  };

  /** The oldest unanswered statement that results can belong to. */
  private firstStatement(): Pending | undefined {
    const p = this.peek();
    return p && (p.kind === 'query' || p.kind === 'execute' || p.kind === 'call') ? p : undefined;
  }
}
