/**
 * The recent-records ring the sinks read from before the segment files: it keeps at least
 * the last `capacity` records and `maxChars` of line text, at most twice each, and every
 * slice it hands out is contiguous and in seq order. Bounded by bytes as well as count, so a
 * burst of large statements cannot hold memory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord } from '../../core/plugin.ts';
import { RecentRecords } from '../../core/audit/spool-reader.ts';

function record(seq: number): AuditRecord {
  return { v: 1, seq, ts: '2026-12-02T00:00:00.000Z', type: 'test', outcome: 'ok', prev: '0'.repeat(64), hash: '1'.repeat(64) } as AuditRecord;
}

function fill(ring: RecentRecords, from: number, count: number, lineChars: number): void {
  for (let seq = from; seq < from + count; seq++) ring.push(record(seq), `${seq}:`.padEnd(lineChars, 'x'));
}

/** The first seq the ring still holds. */
function oldest(ring: RecentRecords, last: number): number {
  let seq = last;
  while (ring.has(seq - 1)) seq--;
  return seq;
}

describe('audit recent-records ring', () => {
  it('keeps between capacity and twice capacity records when lines are small', () => {
    const ring = new RecentRecords(1, 100, 1_000_000);
    for (let n = 1; n <= 1000; n++) {
      fill(ring, n, 1, 10);
      const held = n - oldest(ring, n) + 1;
      assert.ok(held >= Math.min(n, 100) && held < 200, `after ${n} records the ring holds ${held}`);
    }
  });

  it('is bounded by line text as well: large records hold at most twice maxChars', () => {
    const ring = new RecentRecords(1, 1000, 10_000);
    fill(ring, 1, 500, 1_000);
    const held = 500 - oldest(ring, 500) + 1;
    assert.ok(held >= 10 && held < 20, `1,000-char lines, 10,000 chars bound: holds ${held} records`);
    assert.equal(ring.has(1), false);
    assert.equal(ring.has(500), true);
  });

  it('hands out contiguous slices in seq order, up to max and upTo', () => {
    const ring = new RecentRecords(1, 8, 1_000_000);
    fill(ring, 1, 30, 20);
    const first = oldest(ring, 30);
    const slice = ring.slice(first, 30, 5);
    assert.deepEqual(slice.records.map((r) => r.seq), [first, first + 1, first + 2, first + 3, first + 4]);
    assert.deepEqual(slice.lines.map((l) => Number(l.split(':')[0])), slice.records.map((r) => r.seq));
    const tail = ring.slice(28, 29, 100);
    assert.deepEqual(tail.records.map((r) => r.seq), [28, 29]);
    assert.equal(ring.has(31), false);
  });
});

describe('audit recent-records ring, with a reader behind', () => {
  it('keeps records a reader has yet to read, past capacity, up to four times it', () => {
    let wanted = 1;
    const ring = new RecentRecords(1, 100, 1_000_000, () => wanted);
    fill(ring, 1, 350, 10);
    assert.equal(ring.has(1), true, 'a reader wants seq 1: nothing before it is dropped while under 4 × capacity');
    wanted = 301;
    fill(ring, 351, 100, 10);
    assert.equal(ring.has(300), false, 'read records are dropped at the next look');
    assert.equal(ring.has(301), true);
    assert.ok(ring.slice(301, 450, 1000).records.every((r, i) => r.seq === 301 + i));
  });

  it('drops wanted records too once four times capacity is held: memory stays bounded', () => {
    const ring = new RecentRecords(1, 100, 1_000_000, () => 1);
    for (let n = 1; n <= 3000; n++) {
      fill(ring, n, 1, 10);
      const held = n - oldest(ring, n) + 1;
      assert.ok(held <= 500, `after ${n} records a stalled reader makes the ring hold ${held}`);
    }
    assert.equal(ring.has(1), false);
  });

  it('drops wanted records once four times maxChars of line text is held', () => {
    const ring = new RecentRecords(1, 1000, 10_000, () => 1);
    fill(ring, 1, 200, 1_000);
    const held = 200 - oldest(ring, 200) + 1;
    assert.ok(held <= 50, `1,000-char lines, 10,000 chars bound, stalled reader: holds ${held} records`);
  });
});
