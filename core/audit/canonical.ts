/**
 * The one definition of how an audit record is hashed. Every writer and every verifier
 * uses these functions; nothing else may serialize a record for hashing.
 *
 * Version 2 (`"v":2`, what the gateway writes): `hash` is the lower-case hex SHA-256 of the
 * UTF-8 bytes of the record WITHOUT its `hash` member, as `JSON.stringify` writes it:
 * - members in the order the line has them (the writer's order, docs/contract.md: v, seq,
 *   ts, type, agent, grant, session, resource, task, data, outcome, prev), `data`'s members
 *   in line order too (a writer emits integer-like keys first, ascending, as JavaScript
 *   enumerates them);
 * - no whitespace; strings and numbers as `JSON.stringify` writes them.
 * The writer's line is therefore that very text with `,"hash":"…"` before its closing
 * brace: the record is serialised once and hashed once, with no second canonical pass.
 *
 * Version 1 (`"v":1`, lines written before): the hash is over the canonical form:
 * - the record WITHOUT its `hash` key, as a JSON value;
 * - object keys sorted recursively in ascending UTF-16 code-unit order (JavaScript's
 *   default `Array.prototype.sort` on strings);
 * - no whitespace anywhere;
 * - strings and numbers written exactly as `JSON.stringify` writes them (standard JSON
 *   escaping, lone surrogates as `\uXXXX`, shortest round-trip numbers).
 * Verifiers read both, record by record (a chain may cross the upgrade).
 */
import { hash as oneShotHash } from 'node:crypto';

/** `prev` of the record with seq 1. */
export const GENESIS_HASH = '0'.repeat(64);

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // Records are JSON-normalized first, so non-finite numbers cannot reach here; keep
      // JSON's behaviour anyway so the function is total.
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        if (i > 0) out += ',';
        out += JSON.stringify(key) + ':' + canonicalJson(obj[key]);
      }
      return out + '}';
    }
    default:
      throw new TypeError(`not a JSON value: ${typeof value}`);
  }
}

/** One-shot crypto.hash: about half the per-call cost of createHash on this hot path. */
function sha256Hex(text: string): string {
  return oneShotHash('sha256', text, 'hex');
}

/**
 * Hex SHA-256 of `record` minus its `hash` key, by the record's own version: v2 over its
 * JSON text in member order, v1 (and anything else) over the sorted canonical form.
 */
export function recordHash(record: object): string {
  const { hash: _ignored, ...rest } = record as Record<string, unknown>;
  return sha256Hex(rest.v === 2 ? JSON.stringify(rest) : canonicalJson(rest));
}

/** `hash` of a v2 record from its text without the hash member (the line minus `,"hash":"…"`). */
export function hashRecordText(textWithoutHash: string): string {
  return sha256Hex(textWithoutHash);
}

/** Every record line starts with `{`; testing it makes V8 flatten the line (below). */
const LINE_START = /^\{/;

/**
 * The same string as one flat run of characters. A line built with `+` is a tree of
 * concatenations (about two dozen nodes); the recent-records ring keeps thousands of lines,
 * and the tree costs several times the text (measured: 2.6 KB against 0.5 KB for a 425-byte
 * line). A regular expression flattens its subject in place before it runs, on Node 20 and
 * 24 alike (measured; reading one character flattens on Node 20 only); the spool's join then
 * copies flat text as well.
 */
export function flattened(line: string): string {
  LINE_START.test(line);
  return line;
}
