/**
 * Decisions of recent query texts, so a session that repeats a statement (every ORM, every
 * pgbench client) does not pay the PostgreSQL parser and the tree walk again: in the profile
 * of an 8-client select-only run the guardrail was 18% of airlock's busy time.
 *
 * Two tables per level:
 * - by exact text: a cached answer is the answer the parser gave for these very bytes;
 * - by shape: PostgreSQL's own normalisation of the text (libpg-query's normalize: the same
 *   lexer and grammar, every constant replaced by `$n`), for texts that differ only in their
 *   literals (`... WHERE aid = 4711`). Two texts with one shape have one parse tree but for
 *   the leaves that are constants or parameters, so a decision that never looked at a
 *   constant's value is the decision of every text of that shape. Only such decisions are
 *   kept by shape: a walk that read a constant (`set_config('role', …)`, `SET search_path =
 *   …`) is remembered by its exact text alone (walk.ts counts the reads).
 *
 * The shape costs a parse of its own (about 40% of deciding afresh), so it is computed only
 * for a text whose rough literal-blind sketch (a regular expression, no security meaning: it
 * only says "a text like this was seen before") has been seen: a stream of distinct queries
 * pays a sketch per text, not a second parse. A text whose only literals are small integers
 * is shaped without the parser (integer-shape.ts), once the parser's normalisation has
 * given that very shape for a text like it: in the profile of 8-client simple select-only
 * the normalisation was 14% of airlock's CPU.
 *
 * Only what is a pure function of (text, level) is kept: a text naming PREPARE, EXECUTE or
 * DEALLOCATE anywhere (case-insensitive, even inside a string) is decided afresh every time,
 * because its decision depends on, and changes, the session's prepared statements.
 */
import { normalizeSync } from 'libpg-query';
import type { GuardDecision } from './index.ts';
import { integerShape } from './integer-shape.ts';

/** Texts longer than this are decided afresh (bounded memory: at most ENTRIES × MAX_TEXT per table). */
const MAX_TEXT = 8 * 1024;
const ENTRIES = 512;
const SESSION_DEPENDENT = /prepare|execute|deallocate/i;

class DecisionTable {
  private readonly byLevel = [new Map<string, GuardDecision>(), new Map<string, GuardDecision>()] as const;

  get(key: string, readOnly: boolean): GuardDecision | undefined {
    return this.byLevel[readOnly ? 1 : 0].get(key);
  }

  set(key: string, readOnly: boolean, decision: GuardDecision): void {
    const table = this.byLevel[readOnly ? 1 : 0];
    if (table.size >= ENTRIES) table.delete(table.keys().next().value!); // the oldest entry
    table.set(key, decision);
  }
}

const byText = new DecisionTable();
const byShape = new DecisionTable();

/** Sketches of texts seen lately (both levels): a bounded set, cleared when full. */
const sketchesSeen = new Set<string>();
/** Quoted strings (with '' inside) and unsigned numbers, the literals a workload varies. */
const ROUGH_LITERAL = /'(?:[^']|'')*'|\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi;

/**
 * Integer shapes that normalize gave as the shape of a text (integer-shape.ts says why one
 * such text vouches for every text of its integer shape). Bounded, cleared when full.
 */
const integerShapesConfirmed = new Set<string>();

/** Answers given from each table since start, and shapes read without the parser (for tests and profiling). */
const hits = { byText: 0, byShape: 0, integerShapes: 0 };

export function decisionCacheHits(): { readonly byText: number; readonly byShape: number; readonly integerShapes: number } {
  return { ...hits };
}

export function cacheable(sql: string): boolean {
  return sql.length <= MAX_TEXT && !SESSION_DEPENDENT.test(sql);
}

export function cachedDecision(sql: string, readOnly: boolean): GuardDecision | undefined {
  const known = byText.get(sql, readOnly);
  if (known !== undefined) hits.byText++;
  return known;
}

export function rememberDecision(sql: string, readOnly: boolean, decision: GuardDecision): void {
  byText.set(sql, readOnly, decision);
}

/**
 * The text's shape when a text like it was seen before (undefined otherwise, or when the
 * parser refuses it: such a text is decided afresh and refused there with its own message).
 */
export function shapeWorthComputing(sql: string): string | undefined {
  const integers = integerShape(sql);
  if (integers !== null && integerShapesConfirmed.has(integers)) {
    hits.integerShapes++;
    return integers;
  }
  const sketch = sql.replace(ROUGH_LITERAL, '?');
  if (!sketchesSeen.has(sketch)) {
    if (sketchesSeen.size >= ENTRIES) sketchesSeen.clear();
    sketchesSeen.add(sketch);
    return undefined;
  }
  let shape: string;
  try {
    shape = normalizeSync(sql);
  } catch {
    return undefined;
  }
  if (integers === shape && shape.length <= MAX_TEXT) {
    if (integerShapesConfirmed.size >= ENTRIES) integerShapesConfirmed.clear();
    integerShapesConfirmed.add(shape);
  }
  return shape;
}

export function cachedShapeDecision(shape: string, readOnly: boolean): GuardDecision | undefined {
  const known = byShape.get(shape, readOnly);
  if (known !== undefined) hits.byShape++;
  return known;
}

/** Only for a decision whose walk read no constant's value. */
export function rememberShapeDecision(shape: string, readOnly: boolean, decision: GuardDecision): void {
  if (shape.length <= MAX_TEXT) byShape.set(shape, readOnly, decision);
}
