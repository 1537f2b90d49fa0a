/**
 * The guardrail's rules, one named check per kind of danger. Each looks at one parse node
 * and returns the refusal (rule name + what was seen) or undefined. `everyLevel` applies to
 * every access level (role, password and privilege changes, session role switches, lexing
 * changes that would let the gateway and the server read a query differently); `readOnly`
 * applies where the level's privileges are only SELECT. Unknown means refused.
 */
import { BUILTIN_OPERATORS, READ_ONLY_FUNCTIONS } from './builtins.ts';
import { field, isArray, isRecord, isString, nameParts, stringConstant, type ParsedNode } from './walk.ts';

export interface RuleHit {
  readonly rule: string;
  /** What was refused, for the message (never the whole statement). */
  readonly what: string;
}

// ---------------------------------------------------------------------------------------
// Every level
// ---------------------------------------------------------------------------------------

/** Statements that create, change or drop roles, passwords, memberships or privileges. */
const ROLE_STATEMENTS: Readonly<Record<string, string>> = {
  CreateRoleStmt: 'CREATE ROLE/USER/GROUP',
  AlterRoleStmt: 'ALTER ROLE/USER/GROUP (including PASSWORD)',
  AlterRoleSetStmt: 'ALTER ROLE … SET',
  DropRoleStmt: 'DROP ROLE/USER/GROUP',
  GrantRoleStmt: 'GRANT/REVOKE of role membership',
  GrantStmt: 'GRANT/REVOKE of privileges',
  AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES',
  ReassignOwnedStmt: 'REASSIGN OWNED',
  DropOwnedStmt: 'DROP OWNED',
  AlterOwnerStmt: 'ALTER … OWNER TO',
  CreateUserMappingStmt: 'CREATE USER MAPPING (foreign server credentials)',
  AlterUserMappingStmt: 'ALTER USER MAPPING (foreign server credentials)',
  DropUserMappingStmt: 'DROP USER MAPPING',
};

/** Settings that switch who the session acts as, or how it lexes SQL. */
const SESSION_ROLE_SETTINGS = new Set(['role', 'session_authorization', 'session_replication_role']);
const LEXING_SETTINGS = new Set(['standard_conforming_strings', 'backslash_quote', 'escape_string_warning']);

function settingHit(name: string): RuleHit | undefined {
  const n = name.toLowerCase();
  if (SESSION_ROLE_SETTINGS.has(n)) return { rule: 'session-role', what: `changing ${n}` };
  if (LEXING_SETTINGS.has(n)) return { rule: 'lexing-setting', what: `changing ${n} (it changes how SQL text is read)` };
  return undefined;
}

function setConfigHit(body: Readonly<Record<string, unknown>>): RuleHit | undefined {
  const name = nameParts(body.funcname);
  const fn = name && (name.length === 1 || name[0] === 'pg_catalog') ? name.at(-1) : undefined;
  if (fn !== 'set_config') return undefined;
  const first = field(body, 'args', isArray)?.[0];
  const setting = stringConstant(first);
  if (setting === undefined) return { rule: 'session-role', what: 'set_config with a setting name that is not a constant' };
  return settingHit(setting);
}

/** `SET standard_conforming_strings = on` keeps the only lexing the gateway follows: allowed (lexing-guard.ts agrees). */
function setsConformingStringsOn(body: Readonly<Record<string, unknown>>): boolean {
  if (field(body, 'name', isString)?.toLowerCase() !== 'standard_conforming_strings' || field(body, 'kind', isString) !== 'VAR_SET_VALUE') return false;
  const args = field(body, 'args', isArray);
  if (args?.length !== 1) return false;
  const v = stringConstant(args[0]);
  return v !== undefined && ['on', 'true', 'yes', '1'].includes(v.toLowerCase());
}

export function everyLevel(node: ParsedNode): RuleHit | undefined {
  const roleStatement = ROLE_STATEMENTS[node.type];
  if (roleStatement) return { rule: node.type.startsWith('Grant') || node.type === 'AlterDefaultPrivilegesStmt' ? 'privilege-change' : 'role-change', what: roleStatement };
  switch (node.type) {
    case 'RenameStmt':
    case 'SecLabelStmt':
    case 'CommentStmt': {
      const t = field(node.body, node.type === 'RenameStmt' ? 'renameType' : 'objtype', isString);
      return t === 'OBJECT_ROLE' ? { rule: 'role-change', what: `${node.type.replace('Stmt', '').toUpperCase()} on a role` } : undefined;
    }
    case 'VariableSetStmt': {
      const name = field(node.body, 'name', isString);
      return name && !setsConformingStringsOn(node.body) ? settingHit(name) : undefined;
    }
    case 'AlterTableCmd':
      return field(node.body, 'subtype', isString) === 'AT_ChangeOwner' ? { rule: 'role-change', what: 'ALTER … OWNER TO' } : undefined;
    case 'FuncCall':
      return setConfigHit(node.body);
    case 'DoStmt':
      // An anonymous block runs dynamic SQL the gateway cannot see (EXECUTE 'ALTER ROLE …').
      return { rule: 'do-block', what: 'DO (an anonymous code block can hide any statement)' };
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// SELECT-only levels
// ---------------------------------------------------------------------------------------

/** Statements that never write (their inner statements are walked too). Everything else is refused. */
const READ_STATEMENTS = new Set([
  'SelectStmt', 'ExplainStmt', 'PrepareStmt', 'ExecuteStmt', 'DeallocateStmt', 'DeclareCursorStmt',
  'FetchStmt', 'ClosePortalStmt', 'VariableSetStmt', 'VariableShowStmt', 'TransactionStmt',
  'DiscardStmt', 'ListenStmt', 'UnlistenStmt', 'CopyStmt',
]);

const WRITES: Readonly<Record<string, string>> = {
  InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE', TruncateStmt: 'TRUNCATE',
};
const NAMED: Readonly<Record<string, RuleHit>> = {
  CallStmt: { rule: 'call', what: 'CALL (a procedure may write)' },
  LockStmt: { rule: 'lock', what: 'LOCK' },
  NotifyStmt: { rule: 'notify', what: 'NOTIFY' },
  VacuumStmt: { rule: 'maintenance', what: 'VACUUM/ANALYZE' },
  CheckPointStmt: { rule: 'maintenance', what: 'CHECKPOINT' },
  CreateTableAsStmt: { rule: 'ddl', what: 'CREATE TABLE AS / SELECT INTO' },
};

/** Stable functions that still assign a transaction id (a write to the commit log). */
const WRITING_STABLE_FUNCTIONS = new Set(['txid_current', 'pg_current_xact_id']);
/** Volatile functions that change nothing but the session's own random state or read the clock. */
const HARMLESS_VOLATILE_FUNCTIONS = new Set(['random', 'clock_timestamp', 'timeofday', 'gen_random_uuid', 'setseed']);

export interface ReadOnlyContext {
  /** Prepared statements of this session known to be read-only. */
  readonly preparedReadOnly: ReadonlySet<string>;
}

function functionHit(body: Readonly<Record<string, unknown>>): RuleHit | undefined {
  const parts = nameParts(body.funcname);
  if (!parts) return { rule: 'function', what: 'a function call airlock cannot name' };
  const display = parts.join('.');
  if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog')) return { rule: 'function', what: `function ${display} (only built-in read-only functions are allowed)` };
  const name = parts.at(-1)!;
  if (WRITING_STABLE_FUNCTIONS.has(name)) return { rule: 'function', what: `function ${display} (it assigns a transaction id)` };
  if (READ_ONLY_FUNCTIONS.has(name) || HARMLESS_VOLATILE_FUNCTIONS.has(name)) return undefined;
  return { rule: 'function', what: `function ${display} (not a built-in read-only function)` };
}

function operatorHit(body: Readonly<Record<string, unknown>>): RuleHit | undefined {
  const kind = field(body, 'kind', isString);
  if (kind !== 'AEXPR_OP' && kind !== 'AEXPR_OP_ANY' && kind !== 'AEXPR_OP_ALL') return undefined;
  const parts = nameParts(body.name);
  const ok = parts !== undefined && (parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog')) && BUILTIN_OPERATORS.has(parts.at(-1)!);
  return ok ? undefined : { rule: 'operator', what: `operator ${parts?.join('.') ?? '?'} (not a built-in operator)` };
}

function copyHit(body: Readonly<Record<string, unknown>>): RuleHit | undefined {
  if (body.is_from === true) return { rule: 'copy-from', what: 'COPY … FROM' };
  if (body.is_program === true || field(body, 'filename', isString) !== undefined) return { rule: 'copy-file', what: 'COPY to a server file or program' };
  return undefined;
}

function selectHit(body: Readonly<Record<string, unknown>>): RuleHit | undefined {
  if (isRecord(body.intoClause)) return { rule: 'select-into', what: 'SELECT … INTO (creates a table)' };
  const locking = field(body, 'lockingClause', isArray);
  if (locking && locking.length > 0) return { rule: 'row-lock', what: 'FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE (row locks write)' };
  return undefined;
}

/**
 * Unqualified function names resolve through search_path, and pg_catalog is searched first
 * only while it is not listed later: a path that demotes it could make `lower(x)` someone's
 * writing function.
 */
function searchPathHit(body: Readonly<Record<string, unknown>>): RuleHit | undefined {
  if (field(body, 'name', isString)?.toLowerCase() !== 'search_path') return undefined;
  const parts = (field(body, 'args', isArray) ?? []).map(stringConstant);
  const at = parts.findIndex((p) => p === undefined || p.trim().toLowerCase() === 'pg_catalog');
  return at > 0 || parts.includes(undefined) ? { rule: 'search-path', what: 'a search_path that puts pg_catalog after another schema' } : undefined;
}

function transactionHit(body: Readonly<Record<string, unknown>>): RuleHit | undefined {
  const kind = field(body, 'kind', isString) ?? '';
  return /PREPARE/.test(kind) ? { rule: 'two-phase', what: 'PREPARE/COMMIT/ROLLBACK PREPARED' } : undefined;
}

/** A CTE is visited before what it holds, so a write inside one is named for what it is. */
function cteHit(body: Readonly<Record<string, unknown>>): RuleHit | undefined {
  const inner = isRecord(body.ctequery) ? Object.keys(body.ctequery)[0] : undefined;
  const write = inner ? WRITES[inner] : undefined;
  return write ? { rule: 'writable-cte', what: `WITH … AS (${write} …)` } : undefined;
}

export function readOnly(node: ParsedNode, ctx: ReadOnlyContext): RuleHit | undefined {
  const write = WRITES[node.type];
  if (write) return { rule: 'write', what: write };
  const named = NAMED[node.type];
  if (named) return named;
  switch (node.type) {
    case 'SelectStmt': return selectHit(node.body);
    case 'CommonTableExpr': return cteHit(node.body);
    case 'FuncCall': return functionHit(node.body);
    case 'A_Expr': return operatorHit(node.body);
    case 'CopyStmt': return copyHit(node.body);
    case 'TransactionStmt': return transactionHit(node.body);
    case 'VariableSetStmt': return searchPathHit(node.body);
    case 'ExecuteStmt': {
      const name = field(node.body, 'name', isString) ?? '';
      return ctx.preparedReadOnly.has(name) ? undefined : { rule: 'execute-unknown', what: `EXECUTE ${name} (not a statement prepared read-only in this session)` };
    }
    default:
      if (node.type.endsWith('Stmt') && !READ_STATEMENTS.has(node.type)) return { rule: 'ddl', what: statementLabel(node.type) };
      return undefined;
  }
}

/** `CreateTableStmt` → `CREATE TABLE`, for messages. */
export function statementLabel(type: string): string {
  return type.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}
