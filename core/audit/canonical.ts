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

/** Hex SHA-256 of the canonical form of `record` minus its `hash` key. */
export function recordHash(record: object): string {
  const { hash: _ignored, ...rest } = record as Record<string, unknown>;
  return sha256Hex(canonicalJson(rest));
}

/** A record being built, with its string fields already JSON-encoded once. */
export interface EncodedRecordFields {
  seq: number;
  /** JSON-encoded (quoted) strings, or undefined when absent. */
  ts: string;
  type: string;
  agent?: string | undefined;
  grant?: string | undefined;
  session?: string | undefined;
  resource?: string | undefined;
  task?: string | undefined;
  outcome: string;
  /** The data object (already JSON-normalized) and its JSON text. */
  data?: { value: unknown; json: string } | undefined;
  prev: string;
}

/**
 * The hot path of `recordHash` for records the pipeline writes: the top-level keys of a
 * record are fixed, so their sorted order is written out here instead of sorted per record
 * (agent < data < grant < outcome < prev < resource < seq < session < task < ts < type < v).
 * Must produce exactly `canonicalJson(record without hash)`; a test checks this against
 * the general function on randomized records.
 */
export function hashEncodedRecord(f: EncodedRecordFields): string {
  let s = '{';
  if (f.agent !== undefined) s += '"agent":' + f.agent + ',';
  if (f.data !== undefined) s += '"data":' + canonicalJson(f.data.value) + ',';
  if (f.grant !== undefined) s += '"grant":' + f.grant + ',';
  s += '"outcome":' + f.outcome + ',"prev":"' + f.prev + '",';
  if (f.resource !== undefined) s += '"resource":' + f.resource + ',';
  s += '"seq":' + f.seq + ',';
  if (f.session !== undefined) s += '"session":' + f.session + ',';
  if (f.task !== undefined) s += '"task":' + f.task + ',';
  s += '"ts":' + f.ts + ',"type":' + f.type + ',"v":1}';
  return sha256Hex(s);
}

/** The JSONL line in the field order of docs/contract.md "Audit records", from the same encoded fields. */
export function encodeRecordLine(f: EncodedRecordFields, hash: string): string {
  let s = '{"v":1,"seq":' + f.seq + ',"ts":' + f.ts + ',"type":' + f.type;
  if (f.agent !== undefined) s += ',"agent":' + f.agent;
  if (f.grant !== undefined) s += ',"grant":' + f.grant;
  if (f.session !== undefined) s += ',"session":' + f.session;
  if (f.resource !== undefined) s += ',"resource":' + f.resource;
  if (f.task !== undefined) s += ',"task":' + f.task;
  if (f.data !== undefined) s += ',"data":' + f.data.json;
  return s + ',"outcome":' + f.outcome + ',"prev":"' + f.prev + '","hash":"' + hash + '"}';
}
