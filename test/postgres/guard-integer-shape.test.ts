/**
 * The guardrail's shape without the parser (plugins/postgres/guard/integer-shape.ts),
 * cross-checked against the parser it stands in for: libpg-query's normalize. What it
 * claims: a text of the simple kind gets exactly normalize's shape once one text of its
 * integer shape did, whatever its integer values; anything it cannot read with certainty is
 * null (and goes to the parser).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeSync } from 'libpg-query';
import { loadStatementParser } from '../../plugins/postgres/split-statements.ts';
import { integerShape } from '../../plugins/postgres/guard/integer-shape.ts';
import { decideQuery } from '../../plugins/postgres/guard/index.ts';
import { decisionCacheHits } from '../../plugins/postgres/guard/decision-cache.ts';

before(() => loadStatementParser());

/** A deterministic generator, so a failure reproduces. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

test('texts it cannot read with certainty are null: strings, comments, parameters, other numbers, other characters', () => {
  const unreadable = [
    "select * from t where a = 'x' and b = 1",
    "select E'\\x' , 1",
    'select 1 -- comment',
    'select /* 1 */ 2',
    'select $1, 2',
    'select $$x$$, 1',
    'select "Weird Col" from t where id = 1',
    'select 1 from tä',
    'select 1e5',
    'select 1.5',
    'select .5',
    'select t.5 from t',
    'select 0x1F',
    'select 1_000',
    'select 1000000000',
    'select -1',
    'select 1::int',
    'select 1 / 2',
    'select 1 % 2',
    'select a[1] from t',
    'select 1 from t where a != 2',
    'select 1 & 2',
    'select 1e',
    'select 12abc',
  ];
  for (const sql of unreadable) assert.equal(integerShape(sql), null, sql);
  // No literal at all: nothing to shape (the exact-text table answers those).
  assert.equal(integerShape('select * from t'), null);
});

test('for the texts it reads, it gives normalize\'s shape or a text normalize never gives (and is then never trusted)', () => {
  const corpus = [
    'SELECT abalance FROM pgbench_accounts WHERE aid = 71964;',
    'select a1, t.b from t where x in (1,2,3)',
    'select 1; select 2',
    'select 007',
    'select +5',
    'select 1 +2*3',
    'VALUES (1, 2), (3, 4)',
    'SET statement_timeout = 5000',
    'select x from t fetch first 5 rows only',
    'update t set a = a + 1 where id = 42',
    'insert into t (a, b) values (1, 2)',
    'select * from t where a >= 1 and b <> 2 and c <= 3',
    'select count(*) from t group by 1',
    // The grammar does not make these constants (normalize keeps them), or numbers them out of order:
    'FETCH 5 FROM c',
    'select * from t order by 1',
    'select cast(x as numeric(10,2)) from t',
    'select x from t limit 10 offset 5',
  ];
  let same = 0;
  for (const sql of corpus) {
    const mine = integerShape(sql);
    assert.ok(mine !== null, sql);
    const theirs = normalizeSync(sql);
    if (mine === theirs) same++;
    else assert.ok(/\$\d/.test(mine), `${sql}: a shape normalize did not give must still differ from it (${mine} vs ${theirs})`);
  }
  assert.ok(same >= 12, `${same} of the corpus read exactly as normalize reads them`);
});

test('every text of a confirmed integer shape normalises to it, whatever its integers (random values, the real parser)', () => {
  const templates = [
    'SELECT abalance FROM pgbench_accounts WHERE aid = {};',
    'select * from t where a = {} and b in ({}, {}) and c > {}',
    'select {}; select {} + {}',
    'update accounts set balance = balance + {} where id = {}',
    'insert into h (a, b, c) values ({}, {}, CURRENT_TIMESTAMP)',
    'select x from t fetch first {} rows only',
    'VALUES ({}, {})',
    'select +{}*{}',
    'SET statement_timeout = {}',
  ];
  const rand = lcg(7);
  const integer = () => {
    const digits = 1 + Math.floor(rand() * 9);
    let s = '';
    for (let i = 0; i < digits; i++) s += String(Math.floor(rand() * 10));
    return s;
  };
  const fill = (t: string) => t.replace(/\{\}/g, () => integer());
  for (const template of templates) {
    const first = fill(template);
    const shape = integerShape(first);
    assert.ok(shape !== null && shape === normalizeSync(first), `${first} is of the simple kind and confirmed`);
    for (let i = 0; i < 200; i++) {
      const other = fill(template);
      assert.equal(integerShape(other), shape, other);
      assert.equal(normalizeSync(other), shape, other);
    }
  }
});

test('random statements of its alphabet: two texts of one integer shape normalise alike, or neither is trusted', () => {
  const rand = lcg(11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const expr = (depth: number): string => {
    const r = rand();
    if (depth > 3 || r < 0.3) return '{}';
    if (r < 0.45) return pick(['a', 'b1', 't.c', 'count(*)', 'CURRENT_TIMESTAMP']);
    if (r < 0.7) return `${expr(depth + 1)}${pick([' + ', '*', ' = ', ' < ', ' >= ', ' <> ', ' and ', ' or '])}${expr(depth + 1)}`;
    if (r < 0.8) return `(${expr(depth + 1)})`;
    if (r < 0.9) return `${pick(['abs', 'coalesce', 'greatest'])}(${expr(depth + 1)}, ${expr(depth + 1)})`;
    return `${expr(depth + 1)} in (${expr(depth + 1)}, {})`;
  };
  const statement = (): string => {
    const r = rand();
    if (r < 0.5) {
      let s = `select ${expr(0)}, ${expr(0)}`;
      if (rand() < 0.7) s += ` from t where ${expr(0)}`;
      if (rand() < 0.3) s += ` group by ${pick(['a', '{}'])}`;
      if (rand() < 0.3) s += ` order by ${pick(['a', '{}'])}`;
      if (rand() < 0.3) s += ` limit {}`;
      if (rand() < 0.2) s += ` fetch first {} rows only`;
      return s;
    }
    if (r < 0.7) return `update t set a = ${expr(0)} where ${expr(0)}`;
    if (r < 0.85) return `insert into t (a, b) values (${expr(1)}, ${expr(1)})`;
    return `VALUES (${expr(1)}, {})`;
  };
  let compared = 0;
  for (let n = 0; n < 2000; n++) {
    const template = rand() < 0.2 ? `${statement()}; ${statement()}` : statement();
    const a = template.replace(/\{\}/g, () => String(Math.floor(rand() * 1e6)));
    const b = template.replace(/\{\}/g, () => String(Math.floor(rand() * 1e9)));
    const shape = integerShape(a);
    assert.equal(integerShape(b), shape, `${a} / ${b}`);
    let confirmed: string | undefined;
    try {
      confirmed = normalizeSync(a) === shape ? shape : undefined;
    } catch {
      confirmed = undefined;
    }
    if (confirmed === undefined) continue;
    compared++;
    assert.equal(normalizeSync(b), confirmed, `${a} confirmed ${confirmed}; ${b} must normalise to it too`);
  }
  assert.ok(compared > 500, `${compared} confirmed pairs compared`);
});

test('the decision cache shapes such texts without the parser, and answers as deciding afresh would', () => {
  const before = decisionCacheHits();
  // Distinct tables per run of this test, so nothing cached elsewhere answers first.
  const decisions = Array.from({ length: 30 }, (_, i) => decideQuery(`select amount from ledger_ish where id = ${5000 + i}`, { readOnly: true }));
  assert.ok(decisions.every((d) => d.allowed));
  const after = decisionCacheHits();
  // Text 1: sketch seen; text 2: normalised (confirms the integer shape, records the decision); 3..30 by integer shape.
  assert.equal(after.integerShapes - before.integerShapes, 28);
  assert.equal(after.byShape - before.byShape, 28);
  // A write keeps being refused at a read-only level, and allowed at a write level, through the same path.
  for (let i = 0; i < 10; i++) {
    const d = decideQuery(`update ledger_ish set amount = ${i} where id = ${i}`, { readOnly: true });
    assert.equal(d.allowed, false);
    assert.equal(decideQuery(`update ledger_ish set amount = ${i} where id = ${i + 1}`, { readOnly: false }).allowed, true);
  }
  // A decision that read its literal is still kept by exact text only: every value is decided on its own.
  for (let i = 0; i < 6; i++) assert.equal(decideQuery(`SET standard_conforming_strings = ${i % 2}`, { readOnly: false }).allowed, false);
});
