/**
 * The bounded memo the AWS request path fills before a request is authenticated: never more
 * than `max` entries, never a key longer than `maxKeyLength`, and a start-over when full never
 * serves a value for another key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BoundedMemo } from '../../core/aws/memo.ts';

describe('aws bounded memo', () => {
  it('does not remember keys longer than its bound', () => {
    const memo = new BoundedMemo<number>(8, 16);
    memo.set('x'.repeat(17), 1);
    assert.equal(memo.get('x'.repeat(17)), undefined);
    memo.set('x'.repeat(16), 2);
    assert.equal(memo.get('x'.repeat(16)), 2);
  });

  it('computes what it does not hold, and remembers only short keys', () => {
    const memo = new BoundedMemo<number>(8, 4);
    let calls = 0;
    const length = (key: string) => (calls++, key.length);
    assert.equal(memo.getOrCompute('abc', length), 3);
    assert.equal(memo.getOrCompute('abc', length), 3);
    assert.equal(calls, 1);
    assert.equal(memo.getOrCompute('abcdef', length), 6);
    assert.equal(memo.getOrCompute('abcdef', length), 6);
    assert.equal(calls, 3);
  });

  it('holds at most max entries, each under its own key', () => {
    const memo = new BoundedMemo<string>(8, 64);
    for (let i = 0; i < 100; i++) {
      memo.set(`k${i}`, `v${i}`);
      assert.equal(memo.get(`k${i}`), `v${i}`);
      let held = 0;
      for (let j = 0; j <= i; j++) {
        const v = memo.get(`k${j}`);
        if (v !== undefined) {
          held++;
          assert.equal(v, `v${j}`);
        }
      }
      assert.ok(held <= 8, `after ${i + 1} sets the memo holds ${held}`);
    }
  });
});
