/**
 * Table names and patterns of provisioned access levels and grant scopes: `schema.table`,
 * `schema.*`, or a bare `table` (schema `public`). Parts follow PostgreSQL's own reading of
 * identifiers: unquoted parts fold to lower case, `"Quoted"` parts keep their case. Names are
 * only ever compared with catalogue names and sent as bound values or `%I`-quoted by the
 * server, never spliced into SQL.
 */

export interface TableName {
  readonly schema: string;
  /** `*` for every table of the schema. */
  readonly table: string;
}

const UNQUOTED = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const QUOTED = /^"((?:[^"\0]|"")+)"$/;
/** System schemas: airlock never hands out privileges there. */
const SYSTEM_SCHEMA = /^(pg_.*|information_schema)$/;

function part(text: string): string | undefined {
  if (UNQUOTED.test(text)) return text.toLowerCase();
  const m = QUOTED.exec(text);
  if (!m) return undefined;
  const name = m[1]!.replace(/""/g, '"');
  return Buffer.byteLength(name) <= 63 ? name : undefined;
}

/** Split on dots outside double quotes. */
function splitDots(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === '.' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** Parse a name or pattern; returns the reason when it is not one. */
export function parseTableName(text: string, opts: { allowWildcard: boolean }): TableName | string {
  const parts = splitDots(text.trim());
  if (parts.length > 2) return `"${text}" has more than two parts (use schema.table)`;
  const [rawSchema, rawTable] = parts.length === 2 ? [parts[0]!, parts[1]!] : ['public', parts[0]!];
  const schema = part(rawSchema);
  if (schema === undefined) return `"${text}": "${rawSchema}" is not a schema name`;
  if (SYSTEM_SCHEMA.test(schema)) return `"${text}": system schema ${schema} cannot be granted`;
  if (rawTable === '*') {
    if (!opts.allowWildcard || parts.length !== 2) return `"${text}": a wildcard needs a schema (schema.*)`;
    return { schema, table: '*' };
  }
  const table = part(rawTable);
  if (table === undefined) return `"${text}": "${rawTable}" is not a table name`;
  return { schema, table };
}

/** Canonical text: what grants, records and scopes carry (quoted only where needed). */
export function formatTableName(t: TableName): string {
  const q = (s: string) => (s === '*' || /^[a-z_][a-z0-9_$]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);
  return `${q(t.schema)}.${q(t.table)}`;
}

/** Whether `t` (a name or a `schema.*` pattern) lies within one of `patterns`. */
export function withinPatterns(t: TableName, patterns: readonly TableName[]): boolean {
  return patterns.some((p) => p.schema === t.schema && (p.table === '*' || (t.table !== '*' && p.table === t.table)));
}
