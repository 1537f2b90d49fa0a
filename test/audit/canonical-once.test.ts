/**
 * Serialise once: the chain writes v2 records, whose line is the record's JSON text hashed
 * as written (canonical.ts). These cases hold the property that makes that safe (the data
 * a record carries re-serialises to its line's text, on randomized values) and every line
 * to what a reader recomputes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { recordHash } from '../../core/audit/canonical.ts';
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

describe('v2 records: serialised once, hashed as written', () => {
  it('the data a record carries re-serialises to exactly the text in its line (what lets a verifier hash the parsed record)', () => {
    const r = mulberry32(1234);
    for (let i = 0; i < 5000; i++) {
      const value = randomObject(r, 0);
      const encoded = encodeData(value);
      assert.equal(encoded.json, JSON.stringify(value));
      assert.deepEqual(encoded.value, JSON.parse(encoded.json));
      assert.equal(JSON.stringify(encoded.value), encoded.json, `case ${i}: ${encoded.json}`);
    }
  });

  it('values outside the plain subset (a Date, a class, toJSON, functions, an own __proto__) hold the same property', () => {
    class Thing {
      a = 1;
    }
    const own = JSON.parse('{"__proto__":{"x":1},"a":2}') as Record<string, unknown>;
    for (const data of [own, { at: new Date(0) }, { t: new Thing() }, { f: () => 1, x: 1 }, { nested: { toJSON: () => 'x' } }, { arr: [() => 1] }]) {
      const encoded = encodeData(data as Record<string, unknown>);
      assert.equal(encoded.json, JSON.stringify(data));
      assert.equal(JSON.stringify(encoded.value), encoded.json);
    }
  });

  it('each line is the record as JSON.stringify writes it, and recordHash of the parsed line is its hash', () => {
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
        data: r() < 0.9 ? randomObject(r, 0) : undefined,
        outcome: 'ok',
      });
      assert.equal(line, JSON.stringify(record));
      const back = JSON.parse(line) as Record<string, unknown>;
      assert.equal(back.v, 2);
      assert.equal(recordHash(back), record.hash, line);
      assert.deepEqual(back, record);
    }
  });

  it('a v2 hash covers member order and every member; a v1 record still hashes by its sorted canonical form', () => {
    const chain = new HashChain(0, GENESIS_HASH);
    const { record } = chain.next({ type: 'pg.query', grant: 'AG1', data: { sql: 'select 1', rows: 1 }, outcome: 'ok' });
    const { hash, ...rest } = record as unknown as Record<string, unknown>;
    const reordered = { ...rest, data: { rows: 1, sql: 'select 1' }, hash };
    assert.notEqual(recordHash(reordered), hash);
    assert.notEqual(recordHash({ ...rest, extra: 1, hash }), hash);
    assert.equal(recordHash({ ...rest, hash }), hash);
    const v1 = { ...rest, v: 1 };
    const v1Hash = recordHash(v1);
    assert.equal(recordHash({ ...v1, data: { rows: 1, sql: 'select 1' } }), v1Hash, 'v1 is content-addressed: key order does not matter');
    assert.notEqual(v1Hash, hash);
  });
});
