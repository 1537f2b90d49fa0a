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

/** Every typed node under `root` (root included when it is one), in no particular order. */
export function* nodes(root: unknown): Generator<ParsedNode> {
  const stack: unknown[] = [root];
  let seen = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (++seen > MAX_NODES) throw new TreeTooLarge(`query has more than ${MAX_NODES} parse nodes`);
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    if (!isRecord(v)) continue;
    for (const [key, value] of Object.entries(v)) {
      if (/^[A-Z]/.test(key) && isRecord(value)) yield { type: key, body: value };
      if (typeof value === 'object' && value !== null) stack.push(value);
    }
  }
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

/** The value of a string constant node (`{A_Const: {sval: {sval}}}`), else undefined. */
export function stringConstant(node: unknown): string | undefined {
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
