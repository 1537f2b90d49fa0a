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
  /** The data object's canonical text (sorted keys) and its JSON text for the line. */
  data?: { canonical: string; json: string } | undefined;
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
  if (f.data !== undefined) s += '"data":' + f.data.canonical + ',';
  if (f.grant !== undefined) s += '"grant":' + f.grant + ',';
  s += '"outcome":' + f.outcome + ',"prev":"' + f.prev + '",';
  if (f.resource !== undefined) s += '"resource":' + f.resource + ',';
  s += '"seq":' + f.seq + ',';
  if (f.session !== undefined) s += '"session":' + f.session + ',';
  if (f.task !== undefined) s += '"task":' + f.task + ',';
  s += '"ts":' + f.ts + ',"type":' + f.type + ',"v":1}';
  return sha256Hex(s);
}

/**
 * The canonical text of a record's `data` built in ONE walk over the caller's object, with
 * the JSON-normalised copy the record object carries (what a reader of the line parses
 * back). Covers the plain subset — plain objects, arrays, strings, numbers, booleans, null,
 * undefined — and returns undefined for anything else (a Date, a class instance, a
 * function), where the caller takes the general path (JSON round trip, then
 * canonicalJson). Must equal `canonicalJson(JSON.parse(JSON.stringify(value)))`; a test
 * checks this on randomized values.
 */
export function canonicalPlain(value: unknown, copy: { v: unknown }): string | undefined {
  switch (typeof value) {
    case 'string':
      copy.v = value;
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        copy.v = null;
        return 'null';
      }
      copy.v = value === 0 ? 0 : value; // -0 reads back as 0
      return JSON.stringify(value);
    case 'boolean':
      copy.v = value;
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) {
        copy.v = null;
        return 'null';
      }
      return Array.isArray(value) ? canonicalArray(value, copy) : canonicalObject(value, copy);
    default:
      return undefined;
  }
}

function canonicalArray(value: unknown[], copy: { v: unknown }): string | undefined {
  if (Object.getPrototypeOf(value) !== Array.prototype) return undefined;
  const out: unknown[] = new Array(value.length);
  const inner = { v: undefined as unknown };
  let s = '[';
  for (let i = 0; i < value.length; i++) {
    if (i > 0) s += ',';
    const item = value[i];
    if (item === undefined) {
      // JSON writes a missing or undefined element as null.
      out[i] = null;
      s += 'null';
      continue;
    }
    const text = canonicalPlain(item, inner);
    if (text === undefined) return undefined;
    out[i] = inner.v;
    s += text;
  }
  copy.v = out;
  return s + ']';
}

function canonicalObject(value: object, copy: { v: unknown }): string | undefined {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  const out: Record<string, unknown> = {};
  const inner = { v: undefined as unknown };
  let s = '{';
  let first = true;
  for (const key of keys) {
    const item = obj[key];
    if (item === undefined) continue; // JSON drops undefined members
    const text = canonicalPlain(item, inner);
    if (text === undefined) return undefined;
    // An own "__proto__" key (JSON.parse makes them) must stay a key, not set a prototype.
    if (key === '__proto__') Object.defineProperty(out, key, { value: inner.v, enumerable: true, writable: true, configurable: true });
    else out[key] = inner.v;
    s += (first ? '' : ',') + JSON.stringify(key) + ':' + text;
    first = false;
  }
  copy.v = out;
  return s + '}';
}

/** The JSONL line in the docs/contract.md's field order, from the same encoded fields. */
export function encodeRecordLine(f: EncodedRecordFields, hash: string): string {
  let s = '{"v":1,"seq":' + f.seq + ',"ts":' + f.ts + ',"type":' + f.type;
  if (f.agent !== undefined) s += ',"agent":' + f.agent;
  if (f.grant !== undefined) s += ',"grant":' + f.grant;
  if (f.session !== undefined) s += ',"session":' + f.session;
  if (f.resource !== undefined) s += ',"resource":' + f.resource;
  if (f.task !== undefined) s += ',"task":' + f.task;
  if (f.data !== undefined) s += ',"data":' + f.data.json;
  return flattened(s + ',"outcome":' + f.outcome + ',"prev":"' + f.prev + '","hash":"' + hash + '"}');
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
function flattened(line: string): string {
  LINE_START.test(line);
  return line;
}
