/**
 * Just enough of DynamoDB's PartiQL dialect to know, for certain, which table (and index)
 * a statement touches and which item operation it performs. Anything outside the four
 * statement shapes DynamoDB accepts — nested SELECTs, comments, several statements,
 * unknown leading keywords — is UNRESOLVABLE and therefore denied: we never guess.
 *
 *   SELECT <projection> FROM <table>[.<index>] [WHERE …] [ORDER BY …]
 *   EXISTS ( SELECT … )                         (a condition check inside ExecuteTransaction)
 *   INSERT INTO <table> VALUE { … }
 *   UPDATE <table> (SET|REMOVE) … [WHERE …] [RETURNING …]
 *   DELETE FROM <table> WHERE … [RETURNING …]
 *
 * Identifiers are `name` or `"quoted ""name"""`; strings are '…' (with ''), Ion literals
 * are in backticks.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';

export type PartiqlAction = 'select' | 'insert' | 'update' | 'delete';

export interface PartiqlStatement {
  action: PartiqlAction;
  table: string;
  index?: string | undefined;
  /** A SELECT with a WHERE clause (counts as Query; without one, as Scan). */
  hasWhere: boolean;
  /** The statement with every literal replaced by `?`, safe to record. */
  redacted: string;
}

type TokenKind = 'word' | 'quoted' | 'string' | 'ion' | 'number' | 'param' | 'punct';

interface Token {
  kind: TokenKind;
  /** Identifier text (unquoted for `quoted`), or the raw text. */
  text: string;
}

function unresolvable(message: string): AirlockError {
  return new AirlockError(ErrorCodes.UNRESOLVABLE, `PartiQL: ${message}`);
}

const MAX_STATEMENT_LENGTH = 8192;

export function tokenize(statement: string): Token[] {
  if (statement.length > MAX_STATEMENT_LENGTH) throw unresolvable('statement is too long');
  const tokens: Token[] = [];
  let i = 0;
  const n = statement.length;
  while (i < n) {
    const c = statement[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if ((c === '-' && statement[i + 1] === '-') || (c === '/' && statement[i + 1] === '*')) {
      throw unresolvable('comments are not accepted');
    }
    if (c === '"' || c === "'") {
      // Quoted identifier or string; the quote is escaped by doubling it.
      let j = i + 1;
      let text = '';
      for (;;) {
        if (j >= n) throw unresolvable(`unterminated ${c === '"' ? 'quoted identifier' : 'string'}`);
        const d = statement[j] as string;
        if (d === c) {
          if (statement[j + 1] === c) {
            text += c;
            j += 2;
            continue;
          }
          break;
        }
        text += d;
        j++;
      }
      tokens.push({ kind: c === '"' ? 'quoted' : 'string', text });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const end = statement.indexOf('`', i + 1);
      if (end < 0) throw unresolvable('unterminated Ion literal');
      tokens.push({ kind: 'ion', text: statement.slice(i, end + 1) });
      i = end + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(statement[j] as string)) j++;
      tokens.push({ kind: 'word', text: statement.slice(i, j) });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(statement[i + 1] ?? ''))) {
      const m = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(statement.slice(i));
      const text = m?.[0] ?? c;
      tokens.push({ kind: 'number', text });
      i += text.length;
      continue;
    }
    if (c === '?') {
      tokens.push({ kind: 'param', text: '?' });
      i++;
      continue;
    }
    const two = statement.slice(i, i + 2);
    if (['<=', '>=', '<>', '!=', '||', '<<', '>>'].includes(two)) {
      tokens.push({ kind: 'punct', text: two });
      i += 2;
      continue;
    }
    if ('()[]{},.:=<>+-*/%;'.includes(c)) {
      tokens.push({ kind: 'punct', text: c });
      i++;
      continue;
    }
    throw unresolvable(`unexpected character '${c}'`);
  }
  return tokens;
}

function isWord(token: Token | undefined, word: string): boolean {
  return token?.kind === 'word' && token.text.toUpperCase() === word;
}

/** Keywords that would introduce another table reference or statement. */
const TABLE_KEYWORDS = new Set(['SELECT', 'FROM', 'INTO', 'INSERT', 'UPDATE', 'DELETE', 'JOIN', 'UNION', 'EXISTS', 'CREATE', 'DROP']);

function assertNoTableKeywords(tokens: readonly Token[], from: number, to: number): void {
  for (let k = from; k < to; k++) {
    const t = tokens[k] as Token;
    if (t.kind === 'word' && TABLE_KEYWORDS.has(t.text.toUpperCase())) {
      throw unresolvable(`'${t.text}' may appear only once, at its place in the statement (nested statements are not accepted)`);
    }
    if (t.kind === 'punct' && t.text === ';') throw unresolvable('only one statement is accepted');
  }
}

function identifier(token: Token | undefined, what: string): string {
  if (token === undefined || (token.kind !== 'word' && token.kind !== 'quoted')) throw unresolvable(`expected ${what}`);
  if (token.kind === 'word' && TABLE_KEYWORDS.has(token.text.toUpperCase())) throw unresolvable(`expected ${what}, found '${token.text}'`);
  return token.text;
}

interface TableRef {
  table: string;
  index?: string | undefined;
  /** Position after the reference. */
  next: number;
}

function tableRef(tokens: readonly Token[], at: number, allowIndex: boolean): TableRef {
  const table = identifier(tokens[at], 'a table name');
  const dot = tokens[at + 1];
  if (dot?.kind === 'punct' && dot.text === '.') {
    if (!allowIndex) throw unresolvable('an index can only be read, with SELECT');
    const index = identifier(tokens[at + 2], 'an index name');
    return { table, index, next: at + 3 };
  }
  return { table, next: at + 1 };
}

function redact(tokens: readonly Token[]): string {
  return tokens
    .map((t) => {
      switch (t.kind) {
        case 'string':
        case 'ion':
        case 'number':
          return '?';
        case 'quoted':
          return `"${t.text.replace(/"/g, '""')}"`;
        default:
          return t.text;
      }
    })
    .join(' ');
}

function parseSelect(tokens: readonly Token[], start: number, end: number): Omit<PartiqlStatement, 'redacted'> {
  // SELECT <projection> FROM <ref> [WHERE …] [ORDER BY …]
  let fromAt = -1;
  for (let k = start + 1; k < end; k++) {
    if (isWord(tokens[k], 'FROM')) {
      fromAt = k;
      break;
    }
  }
  if (fromAt < 0) throw unresolvable('SELECT without FROM');
  if (fromAt === start + 1) throw unresolvable('SELECT needs a projection');
  assertNoTableKeywords(tokens, start + 1, fromAt);
  const ref = tableRef(tokens, fromAt + 1, true);
  const after = tokens[ref.next];
  let hasWhere = false;
  if (ref.next < end) {
    if (isWord(after, 'WHERE')) hasWhere = true;
    else if (!isWord(after, 'ORDER')) throw unresolvable(`unexpected '${after?.text ?? ''}' after the table name`);
  }
  assertNoTableKeywords(tokens, ref.next, end);
  return { action: 'select', table: ref.table, index: ref.index, hasWhere };
}

export function parseStatement(statement: string): PartiqlStatement {
  const tokens = tokenize(statement);
  if (tokens.length === 0) throw unresolvable('empty statement');
  // A trailing semicolon is harmless; anything after one is a second statement.
  const end = tokens.length - (tokens[tokens.length - 1]?.text === ';' && tokens[tokens.length - 1]?.kind === 'punct' ? 1 : 0);
  const first = (tokens[0] as Token).text.toUpperCase();
  let parsed: Omit<PartiqlStatement, 'redacted'>;

  if (tokens[0]?.kind !== 'word') throw unresolvable('a statement starts with SELECT, INSERT, UPDATE, DELETE or EXISTS');
  switch (first) {
    case 'SELECT':
      parsed = parseSelect(tokens, 0, end);
      break;
    case 'EXISTS': {
      // EXISTS ( SELECT … ) and nothing else.
      const open = tokens[1];
      const close = tokens[end - 1];
      if (open?.text !== '(' || close?.text !== ')' || !isWord(tokens[2], 'SELECT')) {
        throw unresolvable('EXISTS must wrap one SELECT: EXISTS(SELECT … FROM … WHERE …)');
      }
      parsed = parseSelect(tokens, 2, end - 1);
      if (!parsed.hasWhere) throw unresolvable('EXISTS(SELECT …) needs a WHERE clause');
      break;
    }
    case 'INSERT': {
      if (!isWord(tokens[1], 'INTO')) throw unresolvable('expected INSERT INTO');
      const ref = tableRef(tokens, 2, false);
      if (!isWord(tokens[ref.next], 'VALUE')) throw unresolvable('expected VALUE after the table name');
      assertNoTableKeywords(tokens, ref.next, end);
      parsed = { action: 'insert', table: ref.table, hasWhere: false };
      break;
    }
    case 'UPDATE': {
      const ref = tableRef(tokens, 1, false);
      const verb = tokens[ref.next];
      if (!isWord(verb, 'SET') && !isWord(verb, 'REMOVE')) throw unresolvable('expected SET or REMOVE after the table name');
      assertNoTableKeywords(tokens, ref.next, end);
      parsed = { action: 'update', table: ref.table, hasWhere: tokens.slice(ref.next, end).some((t) => isWord(t, 'WHERE')) };
      break;
    }
    case 'DELETE': {
      if (!isWord(tokens[1], 'FROM')) throw unresolvable('expected DELETE FROM');
      const ref = tableRef(tokens, 2, false);
      if (ref.next < end && !isWord(tokens[ref.next], 'WHERE')) throw unresolvable('expected WHERE after the table name');
      assertNoTableKeywords(tokens, ref.next, end);
      parsed = { action: 'delete', table: ref.table, hasWhere: ref.next < end };
      break;
    }
    default:
      throw unresolvable(`statements starting with '${(tokens[0] as Token).text}' are not accepted`);
  }
  return { ...parsed, redacted: redact(tokens.slice(0, end)) };
}
