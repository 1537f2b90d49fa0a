/**
 * Spool lines read in place: a v2 line's seq from its prefix (so readers pass earlier lines
 * without parsing them), a v1 line by parsing, and a line whose prefix and body disagree
 * refused. readFromSegments with no saved position finds its records in a segment that
 * mixes v1 and v2 lines.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leadingSeq, recordFrom } from '../../core/audit/spool-line.ts';
import { readFromSegments } from '../../core/audit/spool-reader.ts';
import { HashChain } from '../../core/audit/chain.ts';

const v1Line = (seq: number) => JSON.stringify({ data: { n: seq }, hash: 'h', outcome: 'ok', prev: 'p', seq, ts: '2026-12-01T00:00:00.000Z', type: 'test', v: 1 });

describe('spool lines read in place', () => {
  it('reads a v2 line\'s seq from the prefix the chain writes', () => {
    const chain = new HashChain(41, '0'.repeat(64));
    const { line } = chain.next({ type: 'pg.query', data: { sql: 'select 1' }, outcome: 'ok' });
    assert.equal(leadingSeq(Buffer.from(line)), 42);
    assert.equal(recordFrom(Buffer.from(line), 42)?.record.seq, 42);
    assert.equal(recordFrom(Buffer.from(line), 43), undefined, 'a line before the seq wanted is passed');
  });

  it('has no prefix seq for a v1 line, for other text, or for digits that do not end in a comma', () => {
    assert.equal(leadingSeq(Buffer.from(v1Line(7))), undefined);
    assert.equal(recordFrom(Buffer.from(v1Line(7)), 1)?.record.seq, 7);
    assert.equal(recordFrom(Buffer.from(v1Line(7)), 8), undefined, 'a v1 line is parsed to learn it comes before the seq wanted');
    assert.equal(leadingSeq(Buffer.from('{"v":2,"seq":12x,"ts":1}')), undefined);
    assert.equal(leadingSeq(Buffer.from('{"v":2,"seq":')), undefined);
    assert.equal(leadingSeq(Buffer.from('{"v":2,"seq":,')), undefined);
    assert.equal(leadingSeq(Buffer.from('{"v":2,"seq":1234567890123456789,')), undefined);
    assert.equal(leadingSeq(Buffer.from('{"v":2,"seq":123456789012345,')), 123456789012345, 'fifteen digits are read');
    assert.equal(leadingSeq(Buffer.from('{"v":2,"seq":1234567890123456,')), undefined, 'sixteen are left to JSON.parse');
    assert.equal(leadingSeq(Buffer.from('garbage')), undefined);
  });

  it('refuses a line whose body holds another seq than its prefix (a later duplicate key)', () => {
    const forged = Buffer.from('{"v":2,"seq":5,"ts":"t","type":"x","outcome":"ok","prev":"p","hash":"h","seq":6}');
    assert.equal(leadingSeq(forged), 5);
    assert.throws(() => recordFrom(forged, 5), /seq 5 parses as seq 6/);
  });
});

describe('readFromSegments without a saved position', () => {
  it('finds the records from `from` in a segment of v1 then v2 lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-spool-line-'));
    try {
      const chain = new HashChain(3, '0'.repeat(64));
      const v2 = Array.from({ length: 6 }, () => chain.next({ type: 'pg.query', data: { sql: 'select 1' }, outcome: 'ok' }).line);
      const path = join(dir, '000000000001.jsonl');
      // The preallocated tail the writer leaves (NUL bytes) ends the written part.
      writeFileSync(path, Buffer.concat([Buffer.from([v1Line(1), v1Line(2), v1Line(3), ...v2].join('\n') + '\n'), Buffer.alloc(64)]));
      const segments = [{ path, firstSeq: 1, bytes: 0 }];
      const fromV1 = await readFromSegments(segments, 2, 5, 100, undefined);
      assert.deepEqual(fromV1.records.map((r) => r.seq), [2, 3, 4, 5]);
      assert.equal(fromV1.lines[0], v1Line(2));
      const fromV2 = await readFromSegments(segments, 7, 100, 2, undefined);
      assert.deepEqual(fromV2.records.map((r) => r.seq), [7, 8]);
      assert.equal(fromV2.lines[1], v2[4]);
      const resumed = await readFromSegments(segments, 9, 100, 100, fromV2.position);
      assert.deepEqual(resumed.records.map((r) => r.seq), [9]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
