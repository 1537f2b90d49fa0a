/**
 * Visit every node of a libpg-query parse tree. The tree is plain JSON where a node is an
 * object with one capitalised key naming its type (`{SelectStmt: {...}}`); walking it
 * generically means a statement nested anywhere (a CTE, EXPLAIN, PREPARE, DECLARE, a
 * function body) is seen without a rule per container. Iterative, with a node budget, so a
 * hostile query cannot exhaust the stack.
 */

export interface ParsedNode {
  readonly type: string;
  readonly body: Readonly<Record<string, unknown>>;
}

export class TreeTooLarge extends Error {}

const MAX_NODES = 200_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The first hit of `check` over every typed node under `root` (root included when it is
 * one), in no particular order, except that a node is checked before anything it holds.
 * A plain loop over `Object.keys` (no generator, no entry pairs): this walk runs on every
 * simple-protocol query, and the generator form cost as much as the parse itself.
 */
export function firstNodeHit<T>(root: unknown, check: (n: ParsedNode) => T | undefined): T | undefined {
  const stack: unknown[] = [root];
  let seen = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (++seen > MAX_NODES) throw new TreeTooLarge(`query has more than ${MAX_NODES} parse nodes`);
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
      continue;
    }
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const value = obj[key];
      if (typeof value !== 'object' || value === null) continue;
      if (isTypeName(key) && !Array.isArray(value)) {
        const hit = check({ type: key, body: value as Record<string, unknown> });
        if (hit !== undefined) return hit;
      }
      stack.push(value);
    }
  }
  return undefined;
}

/** A node type key starts with a capital letter (`SelectStmt`, `A_Const`); field names do not. */
function isTypeName(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 65 && c <= 90;
}

/** The string parts of a name list (`[{String: {sval}}]`), or undefined when one is not a string. */
export function nameParts(list: unknown): string[] | undefined {
  if (!Array.isArray(list)) return undefined;
  const out: string[] = [];
  for (const item of list) {
    const s = isRecord(item) && isRecord(item.String) ? item.String.sval : undefined;
    if (typeof s !== 'string') return undefined;
    out.push(s);
  }
  return out;
}

/**
 * How many times a rule has asked for a constant's value. The decision cache remembers a
 * decision by its text's shape (every constant replaced) only when deciding it asked for
 * none (decision-cache.ts); every read of a constant goes through `stringConstant`.
 */
let constantsRead = 0;

export function constantReads(): number {
  return constantsRead;
}

/** The value of a string constant node (`{A_Const: {sval: {sval}}}`), else undefined. */
export function stringConstant(node: unknown): string | undefined {
  constantsRead++;
  if (!isRecord(node) || !isRecord(node.A_Const) || !isRecord(node.A_Const.sval)) return undefined;
  const s = node.A_Const.sval.sval;
  return typeof s === 'string' ? s : undefined;
}

export function field<T>(body: Readonly<Record<string, unknown>>, key: string, is: (v: unknown) => v is T): T | undefined {
  const v = body[key];
  return is(v) ? v : undefined;
}

export const isString = (v: unknown): v is string => typeof v === 'string';
export const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
export { isRecord };
