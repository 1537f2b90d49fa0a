import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CommitGather, GATHER_WINDOW_MS } from '../../core/audit/commit-gather.ts';

describe('CommitGather (when a strict group commit starts)', () => {
  it('starts at once for a single session, fsync after fsync', () => {
    const g = new CommitGather();
    g.written(1);
    assert.equal(g.startNow(0), true, 'nothing ran before: at once');
    g.ended(g.started(), 10);
    g.written(1);
    assert.equal(g.startNow(10.2), true, 'the last fsync covered one record and none waited: expect one');
  });

  it('waits for the sessions the last fsync released and starts once they are all back', () => {
    const g = new CommitGather();
    g.written(4);
    const covered = g.started(); // cohort A
    g.written(4); // cohort B arrives while A's fsync runs
    g.ended(covered, 10);
    assert.equal(g.startNow(10), false, 'B waits for A to come back');
    g.written(3);
    assert.equal(g.startNow(10.3), false, 'three of A are back');
    g.written(1);
    assert.equal(g.startNow(10.4), true, 'all eight');
    g.ended(g.started(), 11);
    g.written(8);
    assert.equal(g.startNow(11.2), true, 'the next group of eight starts as it completes');
  });

  it('does not gather once the window since the last fsync has passed', () => {
    const g = new CommitGather();
    g.written(8);
    g.ended(g.started(), 10);
    g.written(1);
    assert.equal(g.startNow(10 + GATHER_WINDOW_MS / 2), false);
    assert.equal(g.startNow(10 + GATHER_WINDOW_MS + 0.01), true, 'nobody came back in time: start');
  });
});
