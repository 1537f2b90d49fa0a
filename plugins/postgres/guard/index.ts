/**
 * The Postgres guardrail: decide a whole query (every statement of a simple-protocol query,
 * or the one statement of a Parse) with the real PostgreSQL parser before anything of it is
 * forwarded. One refused statement refuses the whole query, so nothing of it runs. The
 * database's own privileges stay the lock; this is the second one, and it errs on refusing.
 *
 * Call `loadStatementParser()` (split-statements.ts) once before deciding: parsing is then
 * synchronous.
 */
import { parseSync } from 'libpg-query';
import { everyLevel, readOnly, type RuleHit } from './rules.ts';
import { constantReads, field, firstNodeHit, isRecord, isString, TreeTooLarge, type ParsedNode } from './walk.ts';
import { cachedDecision, cachedShapeDecision, cacheable, rememberDecision, rememberShapeDecision, shapeWorthComputing } from './decision-cache.ts';

export interface GuardPolicy {
  /** The level's privileges are only SELECT: refuse everything that could write. */
  readonly readOnly: boolean;
  /** Named prepared statements of this session known to be read-only (EXECUTE of others is refused). */
  readonly preparedReadOnly?: ReadonlySet<string>;
}

export type GuardDecision =
  | {
      readonly allowed: true;
      readonly statements: number;
      /** The session's read-only prepared statements once this query ran (PREPARE/DEALLOCATE applied in order). */
      readonly preparedReadOnly: ReadonlySet<string>;
    }
  | {
      readonly allowed: false;
      /** 42501 insufficient_privilege; 42601 syntax_error when airlock cannot parse the query. */
      readonly sqlstate: '42501' | '42601';
      readonly rule: string;
      /** Safe to show to the client: names the rule and what was refused. */
      readonly message: string;
      /** 0-based index of the refused statement in the query. */
      readonly statement: number;
    };

interface RawStmt {
  stmt?: Record<string, unknown>;
}

function refuse(hit: RuleHit, statement: number, of: number, sqlstate: '42501' | '42601' = '42501'): GuardDecision {
  const where = of > 1 ? ` (statement ${statement + 1} of ${of}; nothing of this query ran)` : '';
  return { allowed: false, sqlstate, rule: hit.rule, statement, message: `airlock guardrail "${hit.rule}": ${hit.what} is not allowed${where}` };
}

function parse(sql: string): RawStmt[] | RuleHit {
  if (sql.includes('\0')) return { rule: 'unparsable', what: 'a query with a NUL byte' };
  // The parser refuses an empty string; the server answers it with EmptyQueryResponse.
  if (sql.trim() === '') return [];
  try {
    const tree = parseSync(sql) as { stmts?: RawStmt[] };
    return tree.stmts ?? [];
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0]!.slice(0, 200) : 'parse error';
    return { rule: 'unparsable', what: `a statement airlock cannot parse (${why})` };
  }
}

/** First hit of `check` over every node of one statement. */
function firstHit(stmt: unknown, check: (n: ParsedNode) => RuleHit | undefined): RuleHit | undefined {
  return firstNodeHit(stmt, check);
}

export function decideQuery(sql: string, policy: GuardPolicy): GuardDecision {
  if (!cacheable(sql)) return decideAfresh(sql, policy);
  const known = cachedDecision(sql, policy.readOnly);
  if (known !== undefined) return withSessionPrepared(known, policy);
  const shape = shapeWorthComputing(sql);
  const sameShape = shape !== undefined ? cachedShapeDecision(shape, policy.readOnly) : undefined;
  if (sameShape !== undefined) return withSessionPrepared(sameShape, policy);
  const readsBefore = constantReads();
  const decision = decideAfresh(sql, policy);
  rememberDecision(sql, policy.readOnly, decision);
  if (shape !== undefined && constantReads() === readsBefore) rememberShapeDecision(shape, policy.readOnly, decision);
  return decision;
}

/** A cacheable text neither reads nor changes the prepared statements: they stay as they were. */
function withSessionPrepared(known: GuardDecision, policy: GuardPolicy): GuardDecision {
  return known.allowed ? { ...known, preparedReadOnly: policy.preparedReadOnly ?? NONE } : known;
}

const NONE: ReadonlySet<string> = new Set();

function decideAfresh(sql: string, policy: GuardPolicy): GuardDecision {
  const stmts = parse(sql);
  if (!Array.isArray(stmts)) return refuse(stmts, 0, 1, '42601');
  const prepared = new Set(policy.preparedReadOnly ?? []);
  for (const [i, raw] of stmts.entries()) {
    let hit: RuleHit | undefined;
    try {
      hit = firstHit(raw.stmt, everyLevel) ?? (policy.readOnly ? firstHit(raw.stmt, (n) => readOnly(n, { preparedReadOnly: prepared })) : undefined);
    } catch (e) {
      if (!(e instanceof TreeTooLarge)) throw e;
      hit = { rule: 'too-complex', what: e.message };
    }
    if (hit) return refuse(hit, i, stmts.length);
    trackPrepared(raw.stmt, prepared);
  }
  return { allowed: true, statements: stmts.length, preparedReadOnly: prepared };
}

/** PREPARE / DEALLOCATE of an allowed statement: later EXECUTEs (in this query too) may use it. */
function trackPrepared(stmt: Record<string, unknown> | undefined, prepared: Set<string>): void {
  const prep = stmt?.PrepareStmt;
  const name = isRecord(prep) ? field(prep, 'name', isString) : undefined;
  if (name) prepared.add(name);
  const dealloc = stmt?.DeallocateStmt;
  if (!isRecord(dealloc)) return;
  const gone = field(dealloc, 'name', isString);
  if (gone) prepared.delete(gone);
  else prepared.clear();
}

/**
 * The guard state of one session: which named prepared statements (SQL PREPARE or a
 * protocol Parse) were allowed read-only. Protocol-level statement names share the SQL
 * namespace, so the wiring calls `parsed(name)` after an allowed named Parse.
 */
export class SessionGuard {
  private prepared: Set<string> = new Set();
  constructor(private readonly readOnlyLevel: boolean) {}

  decide(sql: string): GuardDecision {
    const d = decideQuery(sql, { readOnly: this.readOnlyLevel, preparedReadOnly: this.prepared });
    if (d.allowed && d.preparedReadOnly !== this.prepared) this.prepared = new Set(d.preparedReadOnly);
    return d;
  }

  /** A named protocol-level statement was allowed (Parse with a name). */
  parsed(name: string): void {
    if (name !== '') this.prepared.add(name);
  }

  closed(name: string): void {
    this.prepared.delete(name);
  }
}

/** Read-only when a level's privileges are exactly SELECT (static levels: as configured by the caller). */
export function isSelectOnly(privileges: readonly string[]): boolean {
  return privileges.length > 0 && privileges.every((p) => p === 'SELECT');
}
