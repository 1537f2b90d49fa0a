/**
 * When the next group commit of a strict spool should start: at once, or a moment later so
 * the sessions the last fsync released can join it.
 *
 * Without gathering, busy sessions split into two cohorts that alternate: the records of
 * the sessions released by fsync N arrive while fsync N+1 (started at once for the others,
 * already waiting) runs, so they wait for fsync N+2, and every fsync covers about half of
 * them. Measured on this machine (bench/README.md, tenth pass), pgbench with 8 clients:
 * 0.28 fsyncs per statement, about 3.6 records per fsync, throughput bounded by half the
 * clients per fsync.
 *
 * The rule: the next fsync waits until as many records wait as the last one covered plus
 * those already waiting when it ended (the sessions it released, likely back within a round
 * trip, and the ones it left waiting), but never when its end is longer ago than
 * GATHER_WINDOW_MS (nobody is in a tight loop) and never longer than GATHER_MAX_MS (a
 * timer). A single session never waits: the expected count is then one.
 */

/** An fsync that ended longer ago than this released no one who is coming right back. */
export const GATHER_WINDOW_MS = 1;
/** The longest a waiting record is held before its fsync starts anyway (a timer: Node's are 1 ms at the finest). */
export const GATHER_MAX_MS = 1;

export class CommitGather {
  /** Urgent records (someone awaits their durability) written since the running or last fsync started. */
  private waiting = 0;
  /** How many urgent records the next fsync should cover to take everyone expected back. */
  private expected = 1;
  private lastEndedAt = Number.NEGATIVE_INFINITY;

  /** Urgent records of a batch just written. */
  written(urgentRecords: number): void {
    this.waiting += urgentRecords;
  }

  get urgentWaiting(): number {
    return this.waiting;
  }

  /** An fsync starts and covers what waits now; returns how many urgent records it covers. */
  started(): number {
    const covered = this.waiting;
    this.waiting = 0;
    return covered;
  }

  /** An fsync that covered `covered` urgent records has ended. */
  ended(covered: number, now: number): void {
    this.expected = Math.max(1, covered + this.waiting);
    this.lastEndedAt = now;
  }

  /** Start the next fsync now (else wait for more records, up to GATHER_MAX_MS). */
  startNow(now: number): boolean {
    return this.waiting >= this.expected || now - this.lastEndedAt > GATHER_WINDOW_MS;
  }
}
