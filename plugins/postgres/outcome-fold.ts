/**
 * Statement outcomes folded into the session's next `pg.query` instead of a `pg.result`
 * record each: one record per statement on a busy session, not two.
 *
 * Measured (bench/README.md, December 2026): a second record per statement cost more than
 * a third of airlock's CPU per statement in situ; no fact is lost by folding it:
 *  - a statement's outcome (`query: <seq>` of its pg.query, outcome, rows, ms, commands,
 *    error, …: the data a pg.result carries) rides in `data.done` of the session's next
 *    pg.query, which is written, as every pg.query, before that statement is forwarded;
 *  - an outcome no next statement picks up within FOLD_MS (an idle session) is written as
 *    its own `pg.result` record then, and so is every parked outcome before the session's
 *    refusal or end, so a session's outcomes always precede its `session.closed`.
 * What the client was sent never waits on an outcome record (rows are released on the
 * statement's own record, `durable`), so parking one changes no durability guarantee;
 * only a crash of airlock itself can lose the outcomes of the last FOLD_MS (never a
 * statement's own record).
 */
import type { AuditExchange, AuditOutcome } from '../../core/plugin.ts';
import { recordResult } from './audit-step.ts';

/** How long an outcome waits for the session's next statement before it is written alone. */
export const FOLD_MS = 20;
/** At most this many outcomes ride on one record (a long pipeline of Executes): the rest go out alone. */
const MAX_FOLDED = 64;

interface Parked {
  exchange: AuditExchange;
  data: Record<string, unknown>;
  outcome: AuditOutcome;
}

export class OutcomeFolder {
  private parked: Parked[] = [];
  private oldestAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /**
   * A statement finished: keep its outcome for the next pg.query (or write it within FOLD_MS).
   * `data` is handed over: the folder may add `outcome` to it when it is folded.
   */
  park(exchange: AuditExchange, data: Record<string, unknown>, outcome: AuditOutcome): void {
    if (this.closed) {
      recordResult(exchange, data, outcome);
      return;
    }
    if (this.parked.length === 0) this.oldestAt = performance.now();
    this.parked.push({ exchange, data, outcome });
    if (this.parked.length >= MAX_FOLDED) this.flush();
    else this.arm(FOLD_MS);
  }

  /** The parked outcomes as the next pg.query's `done` (they are folded into it), or undefined. */
  take(): Array<Record<string, unknown>> | undefined {
    if (this.parked.length === 0) return undefined;
    // The parked data is this folder's own (finish() builds it for park()) and leaves the
    // folder here or in flush(), never both: the outcome is added in place, last, as a
    // copy would have it. A spread copy per outcome was 2.4% of airlock's CPU (perf, 8
    // clients simple), most of it V8's generic clone path.
    const parked = this.parked;
    this.parked = [];
    const done = new Array<Record<string, unknown>>(parked.length);
    for (let i = 0; i < parked.length; i++) {
      const p = parked[i]!;
      p.data.outcome = p.outcome;
      done[i] = p.data;
    }
    return done;
  }

  /** Write every parked outcome as its own pg.result now (idle session, refusal, session end). */
  flush(): void {
    const parked = this.parked;
    this.parked = [];
    for (const p of parked) recordResult(p.exchange, p.data, p.outcome);
  }

  /** The session is ending: write what is parked; later outcomes are written at once. */
  close(): void {
    this.flush();
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * One timer per session, armed while something is parked. On a busy session the next
   * statement takes the outcomes first and the timer finds nothing; it is re-armed for the
   * remainder when the outcomes it finds are younger than FOLD_MS.
   */
  private arm(delay: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.parked.length === 0) return;
      const age = performance.now() - this.oldestAt;
      if (age >= FOLD_MS) this.flush();
      else this.arm(FOLD_MS - age);
    }, Math.max(1, Math.ceil(delay)));
    this.timer.unref();
  }
}
