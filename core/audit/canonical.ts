/**
 * The one definition of how an audit record is hashed. Every writer and every verifier
 * uses these functions; nothing else may serialize a record for hashing.
 *
 * Canonical serialization (what `hash` is the SHA-256 of):
 * - the record WITHOUT its `hash` key, as a JSON value;
 * - object keys sorted recursively in ascending UTF-16 code-unit order (JavaScript's
 *   default `Array.prototype.sort` on strings);
 * - no whitespace anywhere;
 * - strings and numbers written exactly as `JSON.stringify` writes them (standard JSON
 *   escaping, lone surrogates as `\uXXXX`, shortest round-trip numbers);
 * - only JSON values occur: records are normalized through a JSON round trip before they
 *   are hashed, so a line read back from any sink hashes to the same bytes.
 * `hash` is the lower-case hex SHA-256 of the UTF-8 bytes of that string.
 */
import { createHash } from 'node:crypto';

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

/** Hex SHA-256 of the canonical form of `record` minus its `hash` key. */
export function recordHash(record: object): string {
  const { hash: _ignored, ...rest } = record as Record<string, unknown>;
  return createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
}
