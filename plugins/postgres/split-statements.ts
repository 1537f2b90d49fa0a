/**
 * Split a simple-protocol query string into its statements with the real PostgreSQL parser
 * (libpg-query), so the audit holds one `pg.query` per statement even when a client sends
 * `select …; delete …` in one message. Most queries hold one statement: a cheap check
 * skips the parser for them (it costs ~0.2 ms a call).
 */
import { loadModule, parseSync } from 'libpg-query';

let ready: Promise<void> | undefined;

/** Load the parser's WASM once, at plugin start (parsing itself is then synchronous). */
export function loadStatementParser(): Promise<void> {
  return (ready ??= loadModule());
}

const MAY_HOLD_SEVERAL = /;\s*\S/;

/**
 * The statements of `sql`, each trimmed, in order. Returns `[sql]` when it holds one
 * statement or cannot be parsed (the server will refuse it; the record keeps the raw text).
 */
export function splitStatements(sql: string): string[] {
  if (!MAY_HOLD_SEVERAL.test(sql)) return [sql];
  let stmts: Array<{ stmt_location?: number; stmt_len?: number }>;
  try {
    stmts = (parseSync(sql) as { stmts?: Array<{ stmt_location?: number; stmt_len?: number }> }).stmts ?? [];
  } catch {
    return [sql];
  }
  if (stmts.length <= 1) return [sql];
  // Locations are byte offsets into the UTF-8 text; a length of 0 means "to the end".
  const bytes = Buffer.from(sql, 'utf8');
  return stmts.map((s) => {
    const from = s.stmt_location ?? 0;
    const to = s.stmt_len ? from + s.stmt_len : bytes.length;
    return bytes.subarray(from, to).toString('utf8').trim();
  });
}
