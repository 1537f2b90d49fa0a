/**
 * Split a simple-protocol query string into its statements with the real PostgreSQL parser
 * (libpg-query), so the audit holds one `pg.query` per statement even when a client sends
 * `select …; delete …` in one message. Most queries hold one statement: a cheap check
 * skips the parser for them (it costs ~0.2 ms a call). The split only helps a reader: the
 * record always keeps the whole text as received too, because the split is only as right as
 * the gateway's lexing agrees with the server's (see lexing-guard.ts).
 */
import { loadModule, parseSync } from 'libpg-query';

let ready: Promise<void> | undefined;

/** Load the parser's WASM once, at plugin start (parsing itself is then synchronous). */
export function loadStatementParser(): Promise<void> {
  return (ready ??= loadModule());
}

const MAY_HOLD_SEVERAL = /;\s*\S/;

export interface ParsedStatement {
  /** The statement's own text, trimmed. */
  text: string;
  /** Its parse tree node (e.g. `{ PrepareStmt: {...} }`). */
  node: Record<string, unknown>;
}

/** Every statement of `sql` with its tree, or null when it cannot be parsed (the server refuses it too). */
export function parseStatements(sql: string): ParsedStatement[] | null {
  let stmts: Array<{ stmt?: Record<string, unknown>; stmt_location?: number; stmt_len?: number }>;
  try {
    stmts = (parseSync(sql) as { stmts?: typeof stmts }).stmts ?? [];
  } catch {
    return null;
  }
  // Locations are byte offsets into the UTF-8 text; a length of 0 means "to the end".
  const bytes = Buffer.from(sql, 'utf8');
  return stmts.map((s) => {
    const from = s.stmt_location ?? 0;
    const to = s.stmt_len ? from + s.stmt_len : bytes.length;
    return { text: bytes.subarray(from, to).toString('utf8').trim(), node: s.stmt ?? {} };
  });
}

/**
 * The statements of `sql`, each trimmed, in order. Returns `[sql]` when it holds one
 * statement or cannot be parsed (the server will refuse it; the record keeps the raw text).
 */
export function splitStatements(sql: string): string[] {
  if (!MAY_HOLD_SEVERAL.test(sql)) return [sql];
  const stmts = parseStatements(sql);
  if (stmts === null || stmts.length <= 1) return [sql];
  return stmts.map((s) => s.text);
}
