/** Scope narrowing for AWS-API plugins: narrows, never widens, refuses the malformed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { narrowList } from '../../core/aws/plugin-kit.ts';
import { isAirlockError } from '../../core/errors.ts';

const opts = { what: 'table', valid: (t: string) => /^[a-z]+$/.test(t), resourceType: 'dynamodb' };

test('no scope: the whole list', () => assert.deepEqual(narrowList(undefined, 'tables', ['a', 'b'], opts), ['a', 'b']));
test('a subset, as a list or a string, de-duplicated', () => {
  assert.deepEqual(narrowList({ tables: ['b', 'b'] }, 'tables', ['a', 'b'], opts), ['b']);
  assert.deepEqual(narrowList({ tables: 'a, b' }, 'tables', ['a', 'b'], opts), ['a', 'b']);
});
test('widening is OUT_OF_SCOPE; malformed and unknown keys are BAD_REQUEST', () => {
  assert.throws(() => narrowList({ tables: ['a', 'zzz'] }, 'tables', ['a'], opts), (e) => isAirlockError(e, 'OUT_OF_SCOPE') && /table zzz is not part/.test(e.message));
  assert.throws(() => narrowList({ tables: [] }, 'tables', ['a'], opts), (e) => isAirlockError(e, 'BAD_REQUEST'));
  assert.throws(() => narrowList({ tables: ['A!'] }, 'tables', ['a'], opts), (e) => isAirlockError(e, 'BAD_REQUEST'));
  assert.throws(() => narrowList({ tables: [1] }, 'tables', ['a'], opts), (e) => isAirlockError(e, 'BAD_REQUEST'));
  assert.throws(() => narrowList({ instances: ['a'] }, 'tables', ['a'], opts), (e) => isAirlockError(e, 'BAD_REQUEST') && /scopes take: tables/.test(e.message));
});
