/**
 * Decisions of recent query texts, so a session that repeats a statement (every ORM, every
 * pgbench client) does not pay the PostgreSQL parser and the tree walk again: in the profile
 * of an 8-client select-only run the guardrail was 18% of airlock's busy time.
 *
 * Only what is a pure function of (text, level) is kept: a text naming PREPARE, EXECUTE or
 * DEALLOCATE anywhere (case-insensitive, even inside a string) is decided afresh every time,
 * because its decision depends on, and changes, the session's prepared statements. Keys are
 * the exact text, so a cached answer is the answer the parser gave for these very bytes.
 */
import type { GuardDecision } from './index.ts';

/** Texts longer than this are decided afresh (bounded memory: at most ENTRIES × MAX_TEXT). */
const MAX_TEXT = 8 * 1024;
const ENTRIES = 512;
const SESSION_DEPENDENT = /prepare|execute|deallocate/i;

const readOnlyLevel = new Map<string, GuardDecision>();
const otherLevels = new Map<string, GuardDecision>();

function tableFor(readOnly: boolean): Map<string, GuardDecision> {
  return readOnly ? readOnlyLevel : otherLevels;
}

export function cacheable(sql: string): boolean {
  return sql.length <= MAX_TEXT && !SESSION_DEPENDENT.test(sql);
}

export function cachedDecision(sql: string, readOnly: boolean): GuardDecision | undefined {
  return tableFor(readOnly).get(sql);
}

export function rememberDecision(sql: string, readOnly: boolean, decision: GuardDecision): void {
  const table = tableFor(readOnly);
  if (table.size >= ENTRIES) table.delete(table.keys().next().value!); // the oldest entry
  table.set(sql, decision);
}
