/**
 * Serialise once: the chain builds each record's canonical text in one walk over the
 * caller's data (canonicalPlain) instead of a JSON round trip plus the general
 * canonicalJson pass. These cases hold the fast path to the general serializer byte for
 * byte, on randomized values, and hold every record line to what a reader recomputes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, canonicalPlain, recordHash } from '../../core/audit/canonical.ts';
import { encodeData, HashChain } from '../../core/audit/chain.ts';
import { GENESIS_HASH } from '../../core/audit/canonical.ts';
import { mulberry32 } from '../harness/prng.ts';

const STRINGS = ['', 'select 1', 'é', '😀', '\ud800', '\udc00x', '"quoted"\\', '\n\t\u0000\u001f', '\u2028\u2029', 'ключ', '10', '2', '__proto__x'];
const NUMBERS = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 123456789.125, Number.MAX_SAFE_INTEGER, 5e-324, NaN, Infinity, -Infinity];
const KEYS = ['sql', 'rows', 'b', 'a', 'B', '10', '2', '1', 'é', 'z z', '', 'aa', 'a\u0000'];

function randomValue(r: () => number, depth: number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const k = r();
  if (depth > 3 || k < 0.25) return pick(STRINGS);
  if (k < 0.45) return pick(NUMBERS);
  if (k < 0.5) return r() < 0.5;
  if (k < 0.55) return null;
  if (k < 0.6) return undefined;
  if (k < 0.75) {
    const arr: unknown[] = [];
    const n = Math.floor(r() * 4);
    for (let i = 0; i < n; i++) arr.push(randomValue(r, depth + 1));
    if (r() < 0.1) arr.length += 1; // a hole
    return arr;
  }
  return randomObject(r, depth + 1);
}

function randomObject(r: () => number, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]!] = randomValue(r, depth);
  return o;
}

describe('canonicalPlain (one walk)', () => {
  it('equals canonicalJson of the JSON round trip, byte for byte, and its copy equals what a reader parses', () => {
    const r = mulberry32(1234);
    for (let i = 0; i < 5000; i++) {
      const value = randomObject(r, 0);
      const copy = { v: undefined as unknown };
      const fast = canonicalPlain(value, copy);
      const parsed: unknown = JSON.parse(JSON.stringify(value));
      assert.equal(fast, canonicalJson(parsed), `case ${i}: ${JSON.stringify(value)}`);
      assert.deepEqual(copy.v, parsed);
    }
  });

  it('hands values outside the plain subset to the general path, which gives the same result', () => {
    class Thing {
      a = 1;
    }
    const own = JSON.parse('{"__proto__":{"x":1},"a":2}') as Record<string, unknown>;
    const ownCopy = { v: undefined as unknown };
    assert.equal(canonicalPlain(own, ownCopy), canonicalJson(own));
    assert.deepEqual(ownCopy.v, own);
    for (const data of [{ at: new Date(0) }, { t: new Thing() }, { f: () => 1, x: 1 }, { nested: { toJSON: () => 'x' } }, { arr: [() => 1] }]) {
      assert.equal(canonicalPlain(data, { v: undefined }), undefined);
      const encoded = encodeData(data as Record<string, unknown>);
      const parsed = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
      assert.equal(encoded.canonical, canonicalJson(parsed));
      assert.deepEqual(encoded.value, parsed);
      assert.equal(encoded.json, JSON.stringify(data));
    }
  });

  it('records from the chain hash exactly to what recordHash recomputes from their lines', () => {
    const r = mulberry32(99);
    const chain = new HashChain(0, GENESIS_HASH);
    for (let i = 0; i < 2000; i++) {
      const { record, line } = chain.next({
        type: 'pg.query',
        agent: r() < 0.8 ? 'local:bot' : undefined,
        grant: 'AG1',
        session: r() < 0.5 ? 's_1' : undefined,
        resource: 'db',
        task: r() < 0.5 ? STRINGS[i % STRINGS.length] : undefined,
        data: randomObject(r, 0),
        outcome: 'ok',
      });
      const back = JSON.parse(line) as Record<string, unknown>;
      assert.equal(recordHash(back), record.hash, line);
      assert.deepEqual(back.data, record.data);
    }
  });
});
