/**
 * Drains the spool into one sink from that sink's own cursor: batches in seq order,
 * retries a rejected batch with jittered exponential back-off, persists the cursor after
 * each success. Each sink has its own runner, so a failing or slow sink delays no other.
 */
import type { Logger } from 'pino';
import type { AuditSink, SinkBatch } from '../plugin.ts';
import type { CursorStore } from './cursors.ts';
import type { RecordSlice } from './spool-reader.ts';

export interface RunnerSource {
  /** Highest seq sinks may receive (synced to the spool). */
  syncedSeq(): number;
  /** Oldest seq still in the spool. */
  oldestSeq(): number;
  /** Contiguous records from `from`, at most `max`, none above syncedSeq. */
  read(from: number, max: number, reader: object): Promise<RecordSlice>;
  /** Resolves when syncedSeq moves past `seq` or `signal` aborts. */
  waitBeyond(seq: number, signal: AbortSignal): Promise<void>;
}

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/** How often a sink's cursor file is rewritten at most. */
const CURSOR_SAVE_MS = 250;

export class SinkRunner {
  cursor: number;
  /** The cursor as last persisted: what segment deletion may rely on after a crash. */
  savedCursor: number;
  private lastSave = 0;
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> | undefined;
  failures = 0;
  lastError: string | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private consecutiveFailures = 0;
  private progressWaiters: Array<() => void> = [];

  constructor(
    readonly id: string,
    readonly sink: AuditSink,
    private readonly maxBatch: number,
    startCursor: number,
    private readonly source: RunnerSource,
    private readonly cursors: CursorStore,
    private readonly backoff: BackoffOptions,
    private readonly log: Logger,
    private readonly onDelivered: () => void,
    /** Batch by age: wait up to this long for a full batch before delivering a partial one. */
    private readonly lingerMs = 0,
  ) {
    this.cursor = startCursor;
    this.savedCursor = startCursor;
  }

  /** Set once someone waits for delivery (e.g. shutdown): lingering stops. */
  private flushing = false;

  private async linger(signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.lingerMs;
    while (!signal.aborted && !this.flushing && this.source.syncedSeq() - this.cursor < this.maxBatch && Date.now() < deadline) {
      const ac = new AbortController();
      const onAbort = () => ac.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      await Promise.race([this.source.waitBeyond(this.source.syncedSeq(), ac.signal), sleep(Math.min(deadline - Date.now(), 250), ac.signal)]);
      ac.abort();
      signal.removeEventListener('abort', onAbort);
    }
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    const reader = {}; // identity of this runner's sequential disk position
    while (!signal.aborted) {
      if (this.cursor < this.source.oldestSeq() - 1) {
        // Older records were deleted before this sink saw them (its cursor is stale or it
        // was removed from the config for a while): say so loudly and continue.
        this.log.error({ sink: this.id, cursor: this.cursor, oldest: this.source.oldestSeq() }, 'audit sink missed records no longer in the spool');
        this.cursor = this.source.oldestSeq() - 1;
      }
      if (this.cursor >= this.source.syncedSeq()) {
        await this.source.waitBeyond(this.cursor, signal);
        continue;
      }
      if (this.lingerMs > 0 && this.consecutiveFailures === 0) await this.linger(signal);
      let batch: SinkBatch;
      try {
        batch = await this.source.read(this.cursor + 1, this.maxBatch, reader);
        if (batch.records.length === 0) throw new Error(`spool has no record ${this.cursor + 1}`);
        batch.records.forEach((r, i) => {
          if (r.seq !== this.cursor + 1 + i) throw new Error(`spool is not contiguous at seq ${this.cursor + 1 + i}`);
        });
        await this.sink.deliver(batch);
      } catch (e) {
        if (signal.aborted) break;
        this.failures++;
        this.consecutiveFailures++;
        this.lastError = (e as Error)?.message ?? String(e);
        const delay = this.retryDelay();
        this.log.warn({ sink: this.id, err: e, retryInMs: Math.round(delay), failures: this.failures }, 'audit sink delivery failed');
        await sleep(delay, signal);
        continue;
      }
      this.consecutiveFailures = 0;
      this.cursor = batch.records[batch.records.length - 1]!.seq;
      await this.saveCursor(false);
      for (const w of this.progressWaiters.splice(0)) w();
    }
  }

  /**
   * Persist the cursor at most every CURSOR_SAVE_MS (a write + rename per delivery cost more
   * than the delivery under load). A stale cursor only makes a restart re-deliver, which
   * sinks tolerate. Segments are deleted only behind the saved cursor, never the newer one.
   */
  private async saveCursor(now: boolean): Promise<void> {
    if (this.cursor === this.savedCursor) return;
    const wait = this.lastSave + CURSOR_SAVE_MS - Date.now();
    if (!now && wait > 0) {
      this.saveTimer ??= setTimeout(() => {
        this.saveTimer = undefined;
        void this.saveCursor(true);
      }, wait);
      return;
    }
    if (this.saving) return this.saving.then(() => this.saveCursor(now));
    const seq = this.cursor;
    this.lastSave = Date.now();
    this.saving = this.cursors.write(this.id, seq).then(
      () => {
        this.savedCursor = Math.max(this.savedCursor, seq);
        this.onDelivered();
      },
      (e: unknown) => {
        // Delivered but not remembered: a restart re-delivers, which sinks tolerate.
        this.log.warn({ sink: this.id, err: e }, 'audit sink cursor could not be saved');
      },
    );
    try {
      await this.saving;
    } finally {
      this.saving = undefined;
    }
  }

  /** Full jitter: uniformly in [d/2, d] with d = min(max, base * 2^(n-1)). */
  private retryDelay(): number {
    const d = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(this.consecutiveFailures - 1, 30));
    return d / 2 + Math.random() * (d / 2);
  }

  /** Resolves true once the cursor reaches `seq`, false after `timeoutMs`. */
  async waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    this.flushing = true;
    const deadline = Date.now() + timeoutMs;
    while (this.cursor < seq) {
      const left = deadline - Date.now();
      if (left <= 0 || this.abort.signal.aborted) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.progressWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return true;
  }

  /** Stops the loop; waits at most `timeoutMs` for a delivery in progress; saves the cursor. */
  async stop(timeoutMs: number): Promise<void> {
    this.abort.abort();
    if (this.loop) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.loop, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.saveCursor(true);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
