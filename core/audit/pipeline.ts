/**
 * The audit pipeline: one hash chain per gateway, written to a local spool before anything
 * else happens, drained to every configured sink from its own cursor.
 *
 *   append() ── chain (seq, prev, hash) ──► SpoolWriter (batched write, fsync rules)
 *                        │                          │ syncedSeq
 *                        └──► RecentRecords ◄── SinkRunner per sink ──► sink.deliver()
 *
 * Sinks only ever receive records that are synced to the spool: a record a sink holds can
 * never be lost locally and then re-used for a different record with the same seq.
 */
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditReceipt, AuditSink } from '../plugin.ts';
import { AirlockError, ErrorCodes } from '../errors.ts';
import { HashChain, type AuditInput } from './chain.ts';
import { checkpointSigner, type CheckpointSigner } from './checkpoint.ts';
import { CursorStore } from './cursors.ts';
import { recoverSpool, type SegmentInfo } from './segments.ts';
import { RecentRecords, readFromSegments, type DiskPosition, type RecordSlice } from './spool-reader.ts';
import { SpoolWriter } from './spool-writer.ts';
import { SinkRunner, type RunnerSource } from './sink-runner.ts';
import type { MetricSample } from '../metrics/prometheus.ts';

/**
 * A receipt and the data as recorded: the copy the record itself holds, which is what a
 * reader of the line parses back. Observers are handed that copy instead of the caller's
 * object, so the two are not both kept (a session's recent events).
 */
export interface AppendedReceipt extends AuditReceipt {
  readonly data?: Record<string, unknown> | undefined;
}

export interface AuditPipelineOptions {
  /** The spool lives in `${dataDir}/spool/`. */
  dataDir: string;
  durability: 'strict' | 'buffered';
  gatewayId: string;
  /** A signed checkpoint after this many other records (default 1000), and at close. */
  checkpointEvery?: number;
  /**
   * A signed checkpoint at least this often while records are added (default 60 s): no
   * stretch of unsigned records spans more record time than this, so `audit verify` can
   * tell a tail that was cut or rewritten (its checkpoints gone) from a live one.
   */
  checkpointIntervalMs?: number;
  /** Beyond this many spool bytes `full` is true (default 1 GiB). */
  spoolMaxBytes?: number;
  /** The previous run did not stop cleanly (kill -9, power loss): said in `gateway.started`. */
  uncleanStop?: boolean;
  /** Ed25519; checkpoints are compact JWS (alg EdDSA) with this kid. */
  /** A node:crypto key: checkpoints are signed synchronously, inside seq allocation. */
  signingKey: { privateKey: KeyObject; kid: string };
  log: Logger;
  /** Segment roll size (default 64 MiB). */
  segmentMaxBytes?: number;
  /** How long close() lets sinks catch up (default 5 s). */
  drainTimeoutMs?: number;
  /** Sink retry back-off: first delay (default 200 ms) and cap (default 30 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Test hook: replaces fdatasync of the spool. */
  fsync?: (fd: number) => Promise<void>;
}

/** What `GET /v1/audit/head` answers (see core/api/audit-routes.ts). */
export interface AuditHead {
  gatewayId: string;
  seq: number;
  hash: string;
  /** When this head was read (also signed). */
  ts: string;
  kid: string;
  syncedSeq: number;
  /** Records after the newest checkpoint. */
  unsignedRecords: number;
  checkpointIntervalMs: number;
  checkpoint?: { seq: number; jws: string; ts: string };
  /** The hash of the record asked for (`?seq=`), when the spool still holds it. */
  at?: { seq: number; hash: string };
  /** Compact JWS (EdDSA) over `{gatewayId, seq, hash, ts, kid, at?}`. */
  jws: string;
}

export interface AuditPipelineMetrics {
  lastSeq: number;
  spoolBytes: number;
  /** Records not yet delivered to the slowest sink. */
  spoolDepth: number;
  sinks: Array<{ id: string; cursor: number; lag: number; failures: number; lastError?: string }>;
  /** Highest seq synced to the spool (what sinks may receive). */
  syncedSeq: number;
  segments: number;
  writes: number;
  fsyncs: number;
  full: boolean;
  healthy: boolean;
}

const DEFAULTS = {
  checkpointEvery: 1000,
  checkpointIntervalMs: 60_000,
  spoolMaxBytes: 1024 ** 3,
  segmentMaxBytes: 64 * 1024 ** 2,
  drainTimeoutMs: 5000,
  retryBaseMs: 200,
  retryMaxMs: 30_000,
  maxBatch: 500,
  // Records kept in memory for sinks that keep up: the newest 1,024-2,048 of them (two to
  // four of a sink's largest batches) and 1-2 Mi characters of line text, and up to four
  // times that while a sink has yet to read them (a buffered spool's sinks trail the writer
  // by a sync interval); older ones are read back from the segment files. Bounded by size
  // too, so large statements cannot hold memory, and small when sinks keep up, so the ring
  // is not most of what idle sessions cost (bench/README.md).
  recentRecords: 1024,
  recentChars: 1024 ** 2,
};

export class AuditPipeline {
  private readonly chain: HashChain;
  private readonly writer: SpoolWriter;
  private readonly recent: RecentRecords;
  private readonly signer: CheckpointSigner;
  private readonly runners = new Map<string, SinkRunner>();
  private readonly diskPositions = new WeakMap<object, DiskPosition>();
  private syncWaiters = new Set<{ seq: number; resolve: () => void }>();
  private sinceCheckpoint = 0;
  /** Record time (ms) spanned by the records since the last checkpoint. */
  private stretchMinTs = 0;
  private stretchMaxTs = 0;
  private checkpointTimer: NodeJS.Timeout | undefined;
  /** The newest checkpoint record: what `head()` shows as the signed point. */
  private lastCheckpoint: { seq: number; jws: string; ts: string } | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private deleting = false;

  private constructor(
    private readonly opts: AuditPipelineOptions & typeof DEFAULTS,
    private readonly spoolDir: string,
    private readonly segments: SegmentInfo[],
    head: { seq: number; hash: string },
    private readonly cursors: CursorStore,
  ) {
    this.chain = new HashChain(head.seq, head.hash);
    this.recent = new RecentRecords(head.seq + 1, DEFAULTS.recentRecords, DEFAULTS.recentChars, () => this.firstSeqWantedBySinks());
    this.signer = checkpointSigner(opts.signingKey);
    this.writer = new SpoolWriter({
      dir: spoolDir,
      durability: opts.durability,
      // Segments are deleted whole once every sink is past them, so a segment must be much
      // smaller than the spool limit, or a drained spool could still count as full.
      segmentMaxBytes: Math.min(opts.segmentMaxBytes, Math.max(64 * 1024, Math.floor(opts.spoolMaxBytes / 4))),
      segments,
      head,
      log: opts.log,
      fsync: opts.fsync,
      onSynced: () => this.wakeSyncWaiters(),
      onFailure: () => this.wakeSyncWaiters(),
    });
  }

  static async open(options: AuditPipelineOptions): Promise<AuditPipeline> {
    const opts = { ...DEFAULTS, ...stripUndefined(options) } as AuditPipelineOptions & typeof DEFAULTS;
    if (!Number.isSafeInteger(opts.checkpointEvery) || opts.checkpointEvery < 1) {
      throw new AirlockError(ErrorCodes.INTERNAL, 'audit checkpointEvery must be a positive integer');
    }
    if (!Number.isSafeInteger(opts.checkpointIntervalMs) || opts.checkpointIntervalMs < 1) {
      throw new AirlockError(ErrorCodes.INTERNAL, 'audit checkpointInterval must be a positive number of milliseconds');
    }
    const spoolDir = join(opts.dataDir, 'spool');
    await mkdir(spoolDir, { recursive: true, mode: 0o700 });
    const recovery = await recoverSpool(spoolDir, opts.log);
    const cursors = new CursorStore(join(spoolDir, 'cursors'));
    await cursors.init();
    const pipeline = new AuditPipeline(opts, spoolDir, recovery.segments, recovery.head, cursors);
    // A tail left unsigned by a crash is signed now, before this run's records start a new
    // stretch: the time between the crash and this start is not a stretch of record time.
    if (recovery.head.seq > 0 && recovery.lastType !== 'checkpoint') pipeline.appendCheckpoint(Date.now());
    const started = pipeline.append({
      type: 'gateway.started',
      data: {
        gatewayId: opts.gatewayId,
        durability: opts.durability,
        checkpointIntervalMs: opts.checkpointIntervalMs,
        ...(opts.uncleanStop === true ? { uncleanStop: true } : {}),
        ...(recovery.truncated.length > 0 ? { spoolRecovery: recovery.truncated } : {}),
      },
      outcome: 'ok',
    });
    try {
      await started.durable;
    } catch (e) {
      await pipeline.close().catch(() => {});
      throw e;
    }
    opts.log.info({ seq: started.seq, resumedFrom: recovery.head.seq }, 'audit pipeline open');
    return pipeline;
  }

  /** Allocates the seq synchronously; `spooled`/`durable` follow the durability mode. */
  append(input: AuditInput): AppendedReceipt {
    if (this.closed) return rejectedReceipt(new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'audit pipeline is closed'));
    if (this.writer.failure) return rejectedReceipt(this.writer.failure);
    const now = Date.now();
    if (this.sinceCheckpoint > 0 && this.stretchWouldExceed(now)) this.appendCheckpoint(now);
    const receipt = this.appendRecord(input, now);
    this.noteUnsigned(now);
    if (this.sinceCheckpoint >= this.opts.checkpointEvery) this.appendCheckpoint(now);
    return receipt;
  }

  /**
   * Calls `fn` right after the spool write that carries every record appended so far (this
   * turn's batch), or at once when they are written; with the error when they cannot be.
   */
  whenSpooled(fn: (error: Error | undefined) => void): void {
    if (this.closed) return fn(new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'audit pipeline is closed'));
    this.writer.afterWrite(fn);
  }

  /**
   * The chain's head now: the last seq and hash (in the spool, possibly not yet synced),
   * the newest checkpoint, and a fresh signature over the head so a verifier can compare
   * a stored log with it. With `atSeq`, also the hash of that synced record (so a log that
   * ends earlier can be checked record for record against the gateway's own spool).
   */
  async head(atSeq?: number): Promise<AuditHead> {
    let at: { seq: number; hash: string } | undefined;
    if (atSeq !== undefined && Number.isSafeInteger(atSeq) && atSeq >= this.oldestSeq() && atSeq <= this.writer.syncedSeq) {
      const slice = await this.read(atSeq, 1, {});
      const rec = slice.records[0];
      if (rec?.seq === atSeq) at = { seq: rec.seq, hash: rec.hash };
    }
    const payload = {
      gatewayId: this.opts.gatewayId,
      seq: this.chain.lastSeq,
      hash: this.chain.lastHash,
      ts: new Date().toISOString(),
      kid: this.signer.kid,
      ...(at ? { at } : {}),
    };
    return {
      ...payload,
      syncedSeq: this.writer.syncedSeq,
      unsignedRecords: this.sinceCheckpoint,
      checkpointIntervalMs: this.opts.checkpointIntervalMs,
      ...(this.lastCheckpoint ? { checkpoint: this.lastCheckpoint } : {}),
      jws: this.signer.signJson(payload),
    };
  }

  /** True when a record at `now` would make the unsigned stretch span the interval. */
  private stretchWouldExceed(now: number): boolean {
    const lo = now < this.stretchMinTs ? now : this.stretchMinTs;
    const hi = now > this.stretchMaxTs ? now : this.stretchMaxTs;
    return hi - lo >= this.opts.checkpointIntervalMs;
  }

  private noteUnsigned(now: number): void {
    if (this.sinceCheckpoint++ === 0) {
      this.stretchMinTs = now;
      this.stretchMaxTs = now;
      this.armCheckpointTimer(this.opts.checkpointIntervalMs);
      return;
    }
    if (now < this.stretchMinTs) this.stretchMinTs = now;
    if (now > this.stretchMaxTs) this.stretchMaxTs = now;
  }

  /**
   * Signs an idle tail: fires one interval after the stretch began (a little earlier, so
   * a loaded loop still signs within the interval) and writes a checkpoint if records are
   * still unsigned. One timer at a time, re-armed for the stretch it finds.
   */
  private armCheckpointTimer(delay: number): void {
    if (this.checkpointTimer !== undefined || this.closed) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      if (this.closed || this.sinceCheckpoint === 0 || this.writer.failure) return;
      const now = Date.now();
      const lead = Math.min(1000, Math.floor(this.opts.checkpointIntervalMs / 10));
      const age = now - this.stretchMinTs;
      if (age >= this.opts.checkpointIntervalMs - lead) {
        this.appendCheckpoint(now);
        return;
      }
      this.armCheckpointTimer(this.opts.checkpointIntervalMs - lead - age);
    }, Math.max(1, delay - Math.min(1000, Math.floor(this.opts.checkpointIntervalMs / 10))));
    this.checkpointTimer.unref();
  }

  /** Share of `spoolMaxBytes` in use: unauthenticated noise keeps out of the last part of it. */
  get spoolUse(): number {
    return this.writer.bytes / this.opts.spoolMaxBytes;
  }

  /** True when new sessions and grants must be refused: spool over its limit or failing. */
  get full(): boolean {
    return this.writer.failure !== undefined || this.closed || this.writer.bytes >= this.opts.spoolMaxBytes;
  }

  /** Why the pipeline refuses work, if it does. */
  get error(): Error | undefined {
    return this.writer.failure;
  }

  attachSink(id: string, sink: AuditSink, maxBatch: number = DEFAULTS.maxBatch, lingerMs = 0): void {
    if (this.closed) throw new AirlockError(ErrorCodes.INTERNAL, 'audit pipeline is closed');
    if (this.runners.has(id)) throw new AirlockError(ErrorCodes.INTERNAL, `audit sink ${id} is attached twice`);
    const runner = new SinkRunner(
      id,
      sink,
      Math.max(1, Math.floor(maxBatch)),
      this.oldestSeq() - 1,
      this.runnerSource(),
      this.cursors,
      { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs },
      this.opts.log,
      () => void this.deleteDeliveredSegments(),
      lingerMs,
    );
    this.runners.set(id, runner);
    // The cursor file is read before the first delivery; until then the runner holds the
    // oldest position, which keeps segment deletion conservative.
    void this.cursors.read(id).then(
      (saved) => {
        if (saved !== undefined) {
          if (saved > this.chain.lastSeq) {
            this.opts.log.error({ sink: id, cursor: saved, lastSeq: this.chain.lastSeq }, 'audit sink cursor is ahead of the spool');
          }
          runner.cursor = Math.min(saved, this.chain.lastSeq);
        }
        if (!this.closed) runner.start();
      },
      (e: unknown) => {
        this.opts.log.error({ sink: id, err: e }, 'audit sink cursor unreadable; starting from the oldest spooled record');
        if (!this.closed) runner.start();
      },
    );
  }

  metrics(): AuditPipelineMetrics {
    const lastSeq = this.chain.lastSeq;
    const sinks = [...this.runners.values()].map((r) => ({
      id: r.id,
      cursor: r.cursor,
      lag: lastSeq - r.cursor,
      failures: r.failures,
      ...(r.lastError !== undefined ? { lastError: r.lastError } : {}),
    }));
    const slowest = sinks.length > 0 ? Math.min(...sinks.map((s) => s.cursor)) : this.oldestSeq() - 1;
    return {
      lastSeq,
      spoolBytes: this.writer.bytes,
      spoolDepth: Math.max(0, lastSeq - slowest),
      sinks,
      syncedSeq: this.writer.syncedSeq,
      segments: this.segments.length,
      writes: this.writer.writes,
      fsyncs: this.writer.fsyncs,
      full: this.full,
      healthy: this.writer.failure === undefined,
    };
  }

  /**
   * The pipeline's own /metrics samples beyond AuditPipelineMetrics: the fdatasync latency
   * histogram and the unsigned records since the last checkpoint.
   */
  metricSamples(): MetricSample[] {
    return [
      ...this.writer.fsyncStats.samples('airlock_audit_spool_fsync_seconds'),
      { name: 'airlock_audit_unsigned_records', help: 'Audit records written since the last signed checkpoint.', type: 'gauge', values: [{ value: this.sinceCheckpoint }] },
    ];
  }

  /**
   * Writes a final checkpoint, fsyncs and closes the spool, lets sinks drain for at most
   * `drainTimeoutMs`, then stops the runners and closes the sinks.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (!this.writer.failure && this.chain.lastSeq > 0) this.appendCheckpoint(Date.now());
    this.closed = true;
    if (this.checkpointTimer !== undefined) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = undefined;
    try {
      await this.writer.close();
    } catch (e) {
      this.opts.log.error({ err: e }, 'audit spool close failed');
    }
    this.wakeSyncWaiters();
    const target = this.writer.syncedSeq;
    const runners = [...this.runners.values()];
    await Promise.all(runners.map((r) => r.waitFor(target, this.opts.drainTimeoutMs)));
    await Promise.all(runners.map((r) => r.stop(1000)));
    for (const r of runners) {
      if (r.cursor < target) this.opts.log.warn({ sink: r.id, cursor: r.cursor, lastSeq: target }, 'audit sink not drained at close; it resumes from its cursor on restart');
      try {
        await r.sink.close?.();
      } catch (e) {
        this.opts.log.warn({ sink: r.id, err: e }, 'audit sink close failed');
      }
    }
    this.wakeSyncWaiters();
  }

  private appendRecord(input: AuditInput, now: number): AppendedReceipt {
    const { record, line } = this.chain.next(input, new Date(now));
    this.recent.push(record, line);
    const batch = this.writer.enqueue(line, record.seq, record.hash, input.lazy !== true);
    return { seq: record.seq, spooled: batch.spooled, durable: batch.durable, data: record.data };
  }

  private appendCheckpoint(now: number): void {
    const seq = this.chain.lastSeq + 1;
    const jws = this.signer.sign({ gatewayId: this.opts.gatewayId, seq, prev: this.chain.lastHash, kid: this.signer.kid, checkpointIntervalMs: this.opts.checkpointIntervalMs });
    const receipt = this.appendRecord({ type: 'checkpoint', data: { jws }, outcome: 'ok' }, now);
    this.lastCheckpoint = { seq: receipt.seq, jws, ts: new Date(now).toISOString() };
    this.sinceCheckpoint = 0;
    // The saved head follows the signed points while running (not only rolls and close).
    this.writer.saveHeadSoon();
  }

  /** The lowest seq some sink has yet to receive (none attached: nothing is wanted). */
  private firstSeqWantedBySinks(): number {
    let wanted = Number.POSITIVE_INFINITY;
    for (const runner of this.runners.values()) wanted = Math.min(wanted, runner.cursor + 1);
    return wanted;
  }

  private oldestSeq(): number {
    return this.segments[0]?.firstSeq ?? this.writer.writtenSeq + 1;
  }

  private runnerSource(): RunnerSource {
    return {
      syncedSeq: () => this.writer.syncedSeq,
      oldestSeq: () => this.oldestSeq(),
      read: (from, max, reader) => this.read(from, max, reader),
      waitBeyond: (seq, signal) => this.waitBeyond(seq, signal),
    };
  }

  private async read(from: number, max: number, reader: object): Promise<RecordSlice> {
    const upTo = this.writer.syncedSeq;
    if (this.recent.has(from)) return this.recent.slice(from, upTo, max);
    const slice = await readFromSegments(this.segments, from, upTo, max, this.diskPositions.get(reader));
    if (slice.position) this.diskPositions.set(reader, slice.position);
    return { records: slice.records, lines: slice.lines };
  }

  private waitBeyond(seq: number, signal: AbortSignal): Promise<void> {
    if (this.writer.syncedSeq > seq || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        seq,
        resolve: () => {
          this.syncWaiters.delete(waiter);
          signal.removeEventListener('abort', waiter.resolve);
          resolve();
        },
      };
      this.syncWaiters.add(waiter);
      signal.addEventListener('abort', waiter.resolve, { once: true });
    });
  }

  private wakeSyncWaiters(): void {
    // Only progress wakes a runner; runners stop through their abort signal. (Waking them
    // on close without progress would spin their loop.)
    const synced = this.writer.syncedSeq;
    for (const w of [...this.syncWaiters]) if (synced > w.seq) w.resolve();
  }

  /** Deletes segments whose every record every attached sink has stored (never the newest). */
  private async deleteDeliveredSegments(): Promise<void> {
    if (this.deleting || this.runners.size === 0) return;
    this.deleting = true;
    try {
      let minCursor = Infinity;
      for (const r of this.runners.values()) minCursor = Math.min(minCursor, r.savedCursor);
      while (this.segments.length > 1 && this.segments[1]!.firstSeq - 1 <= minCursor) {
        const [gone] = this.segments.splice(0, 1);
        try {
          await unlink(gone!.path);
        } catch (e) {
          this.opts.log.warn({ err: e, file: gone!.path }, 'audit spool segment could not be deleted');
        }
      }
    } finally {
      this.deleting = false;
    }
  }
}

function rejectedReceipt(error: Error): AuditReceipt {
  const p = Promise.reject(error);
  p.catch(() => {});
  return { seq: 0, spooled: p, durable: p };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
