/**
 * Follows one session's conversation to audit it: every simple Query, every Execute of the
 * extended protocol and every FunctionCall becomes a `pg.query` record (with its SQL) written
 * before the statement is forwarded; its outcome (rows, command tag, error) becomes a
 * `pg.result` record when the server answers. Responses are matched to statements in order,
 * the way the protocol defines: CommandComplete / EmptyQueryResponse / PortalSuspended /
 * ErrorResponse end an Execute, ReadyForQuery ends a Query, a FunctionCall or a Sync, and
 * an error skips the rest of the batch up to the next Sync.
 *
 * Hot path: one record and two promise reactions per statement; DataRow and CopyData bodies
 * are never read (the frame splitter skips them).
 */
import { performance } from 'node:perf_hooks';
import type { AuditReceipt, Session } from '../../core/plugin.ts';
import { ProtocolViolation } from './wire/buffer-reader.ts';
import type { FrameSink } from './wire/frame-splitter.ts';
import { parseBind, parseExecute, parseFunctionCall, parseParse, parseQuery, parseTarget } from './wire/frontend.ts';
import { parseCommandComplete, parseErrorFields } from './wire/backend.ts';
import { Backend, Frontend, RELAY_BACKEND_TYPES, RELAY_FRONTEND_TYPES } from './wire/protocol.ts';

type PendingKind = 'query' | 'execute' | 'call' | 'sync';

interface Pending {
  kind: PendingKind;
  seq: number;
  startedAt: number;
  rows: number;
  commands: string[] | undefined;
  error: { code: string; message: string } | undefined;
}

import { splitStatements } from './split-statements.ts';

/** Longest SQL text kept in a record; longer text is cut (and flagged) so one statement cannot bloat the audit. */
const MAX_RECORDED_SQL = 64 * 1024;

function clip(sql: string): { sql: string; truncated?: true } {
  return sql.length > MAX_RECORDED_SQL ? { sql: sql.slice(0, MAX_RECORDED_SQL), truncated: true } : { sql };
}

export class StatementTracker {
  /** Named (and the unnamed '') prepared statements → SQL, read once per Parse. */
  private readonly statements = new Map<string, string>();
  private readonly portals = new Map<string, { statement: string; params: (string | null)[] | undefined }>();
  private readonly queue: Pending[] = [];
  private head = 0;
  private dataRows = 0;
  private clientTerminated = false;

  /** The newest `spooled` of a statement in the chunk being inspected (the relay awaits it). */
  private chunkSpooled: Promise<void> | null = null;
  /** The newest statement's `durable`, and whether it has resolved. */
  private latestDurable: Promise<void> | null = null;
  private latestDurableDone = true;

  constructor(
    private readonly session: Session,
    private readonly recordParameters: boolean,
    private readonly onAuditFailure: (e: unknown) => void,
  ) {}

  get terminated(): boolean {
    return this.clientTerminated;
  }

  /** Take the spool promise that must resolve before the current client chunk is forwarded. */
  takeChunkSpooled(): Promise<void> | null {
    const p = this.chunkSpooled;
    this.chunkSpooled = null;
    return p;
  }

  /** The durability every result seen so far depends on, or null when all is durable. */
  pendingDurable(): Promise<void> | null {
    return this.latestDurableDone ? null : this.latestDurable;
  }

  /** Statements forwarded but not yet answered (for the session's closing record). */
  get inFlight(): number {
    return this.queue.length - this.head;
  }

  private noteReceipt(receipt: AuditReceipt): void {
    this.chunkSpooled = receipt.spooled;
    receipt.spooled.then(undefined, this.onAuditFailure);
    const durable = receipt.durable;
    this.latestDurable = durable;
    this.latestDurableDone = false;
    durable.then(() => {
      if (this.latestDurable === durable) this.latestDurableDone = true;
    }, this.onAuditFailure);
  }

  private begin(kind: PendingKind, data: Record<string, unknown> | null): void {
    let seq = -1;
    if (data !== null) {
      const receipt = this.session.record('pg.query', data, 'ok');
      this.noteReceipt(receipt);
      seq = receipt.seq;
    }
    this.enqueue(kind, seq);
  }

  /** A simple query: one `pg.query` per statement it holds; its result points at the first. */
  private beginQuery(sql: string): void {
    const statements = splitStatements(sql);
    if (statements.length === 1) return this.begin('query', clip(sql));
    let first = -1;
    statements.forEach((text, index) => {
      const receipt = this.session.record('pg.query', { ...clip(text), batch: { index, of: statements.length } }, 'ok');
      this.noteReceipt(receipt);
      if (index === 0) first = receipt.seq;
    });
    this.enqueue('query', first);
  }

  private enqueue(kind: PendingKind, seq: number): void {
    this.queue.push({ kind, seq, startedAt: performance.now(), rows: 0, commands: undefined, error: undefined });
  }

  private peek(): Pending | undefined {
    return this.queue[this.head];
  }

  private shift(): Pending | undefined {
    const p = this.queue[this.head];
    if (p === undefined) return undefined;
    this.head++;
    // Compact now and then so a long session's queue does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return p;
  }

  private finish(p: Pending, extra?: Record<string, unknown>): void {
    if (p.seq < 0) return;
    const data: Record<string, unknown> = {
      query: p.seq,
      rows: p.rows,
      ms: Math.round((performance.now() - p.startedAt) * 1000) / 1000,
    };
    if (p.commands !== undefined) data.commands = p.commands;
    if (p.error !== undefined) data.error = p.error;
    if (extra) Object.assign(data, extra);
    this.session.record('pg.result', data, p.error ? 'error' : 'ok').spooled.catch(() => {});
  }

  // -------------------------------------------------------------------------------------
  // Client → upstream
  // -------------------------------------------------------------------------------------

  readonly frontend: FrameSink = {
    header: (type) => {
      if (!RELAY_FRONTEND_TYPES.has(type)) throw new ProtocolViolation(`unexpected message type 0x${type.toString(16)} from client`);
      switch (type) {
        case Frontend.Sync:
          this.begin('sync', null);
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
          this.beginQuery(parseQuery(buf, start, end));
          return;
        case Frontend.Parse: {
          const { name, sql } = parseParse(buf, start, end);
          this.statements.set(name, sql);
          return;
        }
        case Frontend.Bind: {
          const b = parseBind(buf, start, end, this.recordParameters);
          this.portals.set(b.portal, { statement: b.statement, params: b.params });
          return;
        }
        case Frontend.Execute: {
          const { portal } = parseExecute(buf, start, end);
          const bound = this.portals.get(portal);
          const sql = bound ? this.statements.get(bound.statement) : undefined;
          const data: Record<string, unknown> = sql === undefined ? { sql: null } : clip(sql);
          if (bound && bound.statement !== '') data.statement = bound.statement;
          if (portal !== '') data.portal = portal;
          if (bound?.params) data.params = bound.params;
          this.begin('execute', data);
          return;
        }
        case Frontend.Close: {
          const t = parseTarget(buf, start, end, 'Close');
          if (t.kind === 'S') this.statements.delete(t.name);
          else this.portals.delete(t.name);
          return;
        }
        case Frontend.Describe:
          parseTarget(buf, start, end, 'Describe'); // validated only
          return;
        case Frontend.FunctionCall:
          this.begin('call', { sql: null, functionOid: parseFunctionCall(buf, start, end).oid });
          return;
      }
    },
  };

  // -------------------------------------------------------------------------------------
  // Upstream → client
  // -------------------------------------------------------------------------------------

  readonly backend: FrameSink = {
    header: (type) => {
      if (!RELAY_BACKEND_TYPES.has(type)) throw new ProtocolViolation(`unexpected message type 0x${type.toString(16)} from upstream`);
      if (type === Backend.DataRow) {
        this.dataRows++;
        return false;
      }
      return (
        type === Backend.CommandComplete ||
        type === Backend.ErrorResponse ||
        type === Backend.ReadyForQuery ||
        type === Backend.EmptyQueryResponse ||
        type === Backend.PortalSuspended
      );
    },
    body: (type, buf, start, end) => {
      switch (type) {
        case Backend.CommandComplete: {
          const { tag, rows } = parseCommandComplete(buf, start, end);
          this.dataRows = 0;
          const p = this.firstStatement();
          if (!p) return;
          if (p.kind === 'execute') {
            p.rows = rows ?? 0;
            p.commands = [tag.split(' ', 1)[0]!];
            this.shift();
            this.finish(p);
          } else {
            p.rows += rows ?? 0;
            (p.commands ??= []).push(tag.split(' ', 1)[0]!);
          }
          return;
        }
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
        case Backend.ErrorResponse: {
          const f = parseErrorFields(buf, start, end);
          const error = { code: f.get('C') ?? '', message: f.get('M') ?? '' };
          this.dataRows = 0;
          const p = this.peek();
          if (!p) return;
          if (p.kind === 'execute') {
            p.error = error;
            this.shift();
            this.finish(p);
            // The server now skips everything up to the next Sync.
            for (let q = this.peek(); q?.kind === 'execute'; q = this.peek()) {
              this.shift();
              this.finish(q, { skipped: true });
            }
          } else if (p.kind === 'query' || p.kind === 'call') {
            p.error ??= error;
          }
          return;
        }
        case Backend.ReadyForQuery: {
          this.dataRows = 0;
          for (let p = this.shift(); p !== undefined; p = this.shift()) {
            if (p.kind === 'execute') {
              this.finish(p, { skipped: true });
              continue;
            }
            if (p.kind !== 'sync') this.finish(p);
            break;
          }
          return;
        }
      }
    },
  };

  /** The oldest unanswered statement that results can belong to. */
  private firstStatement(): Pending | undefined {
    const p = this.peek();
    return p && p.kind !== 'sync' ? p : undefined;
  }
}
