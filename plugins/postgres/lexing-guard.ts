/**
 * Statements that would make the server lex SQL differently from the gateway's parser are
 * refused before they reach the server. With `standard_conforming_strings = off` the server
 * reads `\'` inside '…' as an escaped quote where libpg-query ends the string, so text the
 * gateway takes for a comment between statements would run. airlock does not try to lex
 * under the old rules: it refuses the change (decision: refusing is simpler and fails closed).
 *
 * Refused: SET / SET LOCAL / RESET / SET … TO DEFAULT of `standard_conforming_strings` to
 * anything but on, any SET or RESET of `backslash_quote`, and any `set_config(…)` call in a
 * statement that names either setting. Paths this text check cannot see (a setting name in a
 * Bind parameter, a function with a SET clause) are caught by the server's own report: a
 * ParameterStatus saying `standard_conforming_strings` is off ends the session (relay).
 * Either way every pg.query also carries the whole text as received, so the audit never
 * depends on the split agreeing with the server.
 */
import { parseSync } from 'libpg-query';

const MENTIONS = /standard_conforming_strings|backslash_quote/i;
const GUARDED = new Set(['standard_conforming_strings', 'backslash_quote']);
const ON = new Set(['on', 'true', 'yes', '1']);

export const LEXING_REFUSAL_SQLSTATE = '42501';

/** Why `sql` is refused, or null when it may run. Cheap for the common case (one regex test). */
export function lexingChangeIn(sql: string): string | null {
  if (!MENTIONS.test(sql)) return null;
  let tree: unknown;
  try {
    tree = parseSync(sql);
  } catch {
    return null; // the server refuses it too: with scs on both lex alike
  }
  return findChange(tree);
}

function findChange(node: unknown): string | null {
  if (Array.isArray(node)) {
    for (const n of node) {
      const r = findChange(n);
      if (r) return r;
    }
    return null;
  }
  if (node === null || typeof node !== 'object') return null;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'VariableSetStmt' && value !== null && typeof value === 'object') {
      const r = refusedSet(value as VariableSet);
      if (r) return r;
    }
    if (key === 'FuncCall' && value !== null && typeof value === 'object' && callsSetConfig(value as { funcname?: unknown })) {
      return 'set_config() in a statement naming standard_conforming_strings or backslash_quote';
    }
    const r = findChange(value);
    if (r) return r;
  }
  return null;
}

interface VariableSet {
  kind?: string;
  name?: string;
  args?: Array<{ A_Const?: { sval?: { sval?: string }; boolval?: { boolval?: boolean }; ival?: { ival?: number } } }>;
}

function refusedSet(s: VariableSet): string | null {
  const name = s.name?.toLowerCase();
  if (name === undefined || !GUARDED.has(name)) return null;
  if (name === 'backslash_quote') return 'changing backslash_quote';
  if (s.kind === 'VAR_SET_VALUE' && s.args?.length === 1) {
    const c = s.args[0]?.A_Const;
    const v = c?.sval?.sval ?? (c?.boolval ? String(c.boolval.boolval === true) : c?.ival ? String(c.ival.ival ?? 0) : undefined);
    if (v !== undefined && ON.has(v.toLowerCase())) return null;
  }
  // RESET / DEFAULT go back to the server's configured default, which may be off.
  return 'changing standard_conforming_strings';
}

function callsSetConfig(f: { funcname?: unknown }): boolean {
  const names = Array.isArray(f.funcname) ? f.funcname : [];
  const last = names.at(-1) as { String?: { sval?: string } } | undefined;
  return last?.String?.sval?.toLowerCase() === 'set_config';
}
