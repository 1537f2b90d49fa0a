/**
 * Appends audit lines to the spool with the durability rule of docs/design.md.
 *
 * - Every line enqueued in one event-loop turn goes out in ONE write (setImmediate
 *   batching); the batch's `spooled` promise resolves once that write returned (the kernel
 *   holds the bytes, so a crash of the process loses nothing), and the streams waiting on it
 *   (`afterWrite`) are called right after it, in the same turn.
 * - strict: a batch's `durable` resolves after an fdatasync that STARTED after its write.
 *   One fdatasync serves every batch waiting when it starts (group commit); batches
 *   written while it runs wait for the next one.
 * - buffered: fdatasync every 100 ms; `durable` is `spooled`.
 * - strict, records nobody waits on to be durable (an exchange's outcome: the client was
 *   already held until its request record was synced): written at once like the others,
 *   synced by the next group commit or within LAZY_SYNC_MS, never by a sync of their own.
 *   At one client this halves the fsyncs per statement (the outcome no longer delays the
 *   next statement's sync).
 * - A failed write or sync rejects the affected batches and every later one: the writer
 *   stays failed (fail closed) until the gateway restarts and recovers the tail.
 *
 * The write itself is synchronous: a page-cache write takes microseconds, keeps the
 * batches in order without an in-flight queue, and lets the fsync run on the thread pool.
 *
 * Preallocated segments: the current segment is written ahead with zeros (PREALLOC_CHUNK
 * at a time, well before the records reach them) and records overwrite those zeros in
 * place, so an fdatasync has no file size to commit, only the data. Measured on this
 * machine's ext4: p50 0.17-0.18 ms against 0.26-0.31 ms for an append (bench/README.md).
 * The zeros are cut off (ftruncate) when a segment rolls and at close; readers stop at the
 * first NUL byte, which no record line contains (JSON escapes control characters), and
 * recovery cuts a NUL tail without calling it torn (segments.ts).
 */
import { closeSync, constants, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import { AirlockError, ErrorCodes } from '../errors.ts';
import { CommitGather, GATHER_MAX_MS } from './commit-gather.ts';
import { FsyncStats } from './fsync-stats.ts';
import { fsyncDirSync, segmentFileName, writeHead, writeHeadSync, type SegmentInfo } from './segments.ts';

export type Durability = 'strict' | 'buffered';

export interface SpoolBatch {
  readonly spooled: Promise<void>;
  readonly durable: Promise<void>;
}

/** Called right after a batch's write (error: it failed, or the writer had failed before). */
export type AfterWrite = (error: Error | undefined) => void;

interface PendingBatch extends SpoolBatch {
  lines: string[];
  /** Streams that forward in the same turn once this batch is written (AuditPipeline.whenSpooled). */
  after: AfterWrite[] | undefined;
  /** Records of the batch someone waits on to be durable: a sync starts for them (commit-gather.ts says when). */
  urgentRecords: number;
  lastSeq: number;
  lastHash: string;
  resolveSpooled(): void;
  rejectSpooled(e: Error): void;
  resolveDurable(): void;
  rejectDurable(e: Error): void;
}

export interface SpoolWriterOptions {
  dir: string;
  durability: Durability;
  segmentMaxBytes: number;
  /** Segments found on open; the last one is appended to. Mutated as segments roll. */
  segments: SegmentInfo[];
  head: { seq: number; hash: string };
  log: Logger;
  /** Test hook: replaces fdatasync (e.g. to hold one open and watch batches wait). */
  fsync?: ((fd: number) => Promise<void>) | undefined;
  /** Called when synced data advances (sinks may read up to `syncedSeq`). */
  onSynced(): void;
  /** Called once when the writer fails. */
  onFailure(error: Error): void;
}

const BUFFERED_SYNC_MS = 100;
/** Zeros written ahead of the records at a time; a new chunk is added while half of one is still free. */
const PREALLOC_CHUNK = 256 * 1024;
const ZEROS = Buffer.alloc(PREALLOC_CHUNK);
const LAZY_SYNC_MS = 20;
/** The largest encode buffer kept between batches. */
const ENCODE_BUFFER_MAX = 4 * 1024 * 1024;
const HEAD_SAVE_MIN_MS = 1000;

export class SpoolWriter {
  /** Highest seq handed to the kernel. */
  writtenSeq: number;
  /** Highest seq known to be on stable storage (or, in buffered mode, last periodic sync). */
  syncedSeq: number;
  writes = 0;
  fsyncs = 0;
  /** Latency of every fdatasync (group commits, rolls, close). */
  readonly fsyncStats = new FsyncStats();
  failure: Error | undefined;

  private writtenHash: string;
  private syncedHash: string;
  /** head.json: a write in flight, and whether a newer head waits for the next one. */
  private headWrite: Promise<void> | undefined;
  private headWanted = false;
  private lastHeadWriteAt = 0;
  private headTimer: NodeJS.Timeout | undefined;
  private fd: number | undefined;
  private current: SegmentInfo | undefined;
  /** Size of the current segment's file: its records (`current.bytes`) and the zeros ahead of them. */
  private allocated = 0;
  private pending: PendingBatch | undefined;
  private awaitingSync: PendingBatch[] = [];
  private syncing = false;
  /** The running fdatasync, so close() can wait for it. */
  private inflight: Promise<void> | undefined;
  /** fds retired by a segment roll while a sync on them was still running. */
  private retired: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lazyTimer: NodeJS.Timeout | undefined;
  /** When the next group commit starts (strict). */
  private readonly gather = new CommitGather();
  private gatherTimer: NodeJS.Timeout | undefined;
  private readonly doFsync: (fd: number) => Promise<void>;

  constructor(private readonly opts: SpoolWriterOptions) {
    this.writtenSeq = opts.head.seq;
    this.syncedSeq = opts.head.seq;
    this.writtenHash = opts.head.hash;
    this.syncedHash = opts.head.hash;
    this.doFsync =
      opts.fsync ?? ((fd) => new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve()))));
    const last = opts.segments[opts.segments.length - 1];
    if (last) {
      // What recovery found may still be only in the page cache (crash in buffered
      // mode): make it durable before the chain grows on top of it.
      const fd = openSync(last.path, 'r+');
      fdatasyncSync(fd);
      if (last.bytes < opts.segmentMaxBytes) {
        this.current = last;
        this.fd = fd;
        // Recovery cut any NUL tail, so the file ends with the last record.
        this.allocated = fstatSync(fd).size;
      } else {
        closeSync(fd);
      }
    }
    if (opts.durability === 'buffered') {
      this.timer = setInterval(() => this.startSync(), BUFFERED_SYNC_MS);
      this.timer.unref();
    }
  }

  /** Total bytes of the segments on disk. */
  get bytes(): number {
    let total = 0;
    for (const s of this.opts.segments) total += s.bytes;
    return total;
  }

  /** `urgent: false`: nobody awaits this record's `durable` (strict syncs it with the next group commit). */
  enqueue(line: string, seq: number, hash: string, urgent = true): SpoolBatch {
    if (this.failure) return rejectedBatch(this.failure);
    let batch = this.pending;
    if (!batch) {
      batch = newBatch(this.opts.durability === 'buffered');
      this.pending = batch;
      this.armEndOfTurn();
    }
    if (urgent) batch.urgentRecords++;
    batch.lines.push(line);
    batch.lastSeq = seq;
    batch.lastHash = hash;
    return batch;
  }

  private endOfTurnArmed = false;

  /** One end-of-turn flush armed at a time (a batch written early by close() leaves it nothing to do). */
  private armEndOfTurn(): void {
    if (this.endOfTurnArmed) return;
    this.endOfTurnArmed = true;
    setImmediate(this.endOfTurn);
  }

  private readonly endOfTurn = (): void => {
    this.endOfTurnArmed = false;
    this.flush();
  };

  /**
   * Run `fn` synchronously right after the write that carries every line enqueued so far, in
   * this turn's flush, or at once when they are all written already; with the error when the
   * spool cannot take them. One write per turn still serves every session, and a stream can
   * forward what it held in that same turn, without a promise per request.
   */
  afterWrite(fn: AfterWrite): void {
    if (this.failure) return fn(this.failure);
    const batch = this.pending;
    if (batch === undefined) return fn(undefined);
    (batch.after ??= []).push(fn);
  }

  /** Writes the pending batch now (run at the end of the turn, and by close). */
  flush(): void {
    const batch = this.pending;
    if (!batch) return;
    this.pending = undefined;
    if (this.failure) {
      failBatch(batch, this.failure);
      runAfter(batch, this.failure);
      return;
    }
    const data = this.encode(batch.lines);
    try {
      const firstSeq = batch.lastSeq - batch.lines.length + 1;
      if (this.fd === undefined || !this.current || (this.current.bytes > 0 && this.current.bytes + data.length > this.opts.segmentMaxBytes)) {
        this.roll(firstSeq);
      }
      this.reserve(data.length);
      const at = this.current!.bytes;
      let off = 0;
      while (off < data.length) off += writeSync(this.fd!, data, off, data.length - off, at + off);
      this.current!.bytes += data.length;
      this.writes++;
    } catch (e) {
      this.fail(new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, `audit spool write failed: ${(e as Error).message}`, { cause: e }));
      failBatch(batch, this.failure!);
      runAfter(batch, this.failure);
      return;
    }
    this.writtenSeq = batch.lastSeq;
    this.writtenHash = batch.lastHash;
    batch.resolveSpooled();
    if (this.opts.durability === 'strict') {
      this.awaitingSync.push(batch);
      this.gather.written(batch.urgentRecords);
      if (batch.urgentRecords > 0) this.requestSync();
      else this.syncLazily();
    } else {
      batch.resolveDurable();
    }
    runAfter(batch, undefined);
  }

  /**
   * The batch's lines as UTF-8, each followed by a newline, in a buffer kept from batch to
   * batch (the write is synchronous, so it is free again at once): no joined string and no
   * new Buffer per turn, about 1.1 KB of garbage per statement less (bench/README.md, tenth
   * pass). A batch larger than the kept buffer's cap gets a buffer of its own. Returns the
   * encoded bytes (a view, valid until the next batch).
   */
  private encode(lines: readonly string[]): Buffer {
    let bound = 0;
    for (const line of lines) bound += line.length * 3 + 1; // UTF-8: at most 3 bytes per UTF-16 unit
    let buf = this.encodeBuffer;
    if (bound > buf.length) {
      buf = Buffer.allocUnsafe(Math.max(bound, Math.min(buf.length * 2, ENCODE_BUFFER_MAX)));
      if (buf.length <= ENCODE_BUFFER_MAX) this.encodeBuffer = buf;
    }
    let off = 0;
    for (const line of lines) {
      off += buf.write(line, off, 'utf8');
      buf[off++] = 0x0a;
    }
    return buf.subarray(0, off);
  }

  private encodeBuffer: Buffer = Buffer.allocUnsafe(64 * 1024);

  /** Keeps zeros written ahead of the next `bytes` of records (and half a chunk more). */
  private reserve(bytes: number): void {
    // A small spool (small segments) is not preallocated far past where its segment rolls.
    const chunk = Math.min(PREALLOC_CHUNK, this.opts.segmentMaxBytes);
    while (this.current!.bytes + bytes + chunk / 2 > this.allocated) {
      let off = 0;
      while (off < chunk) off += writeSync(this.fd!, ZEROS, off, chunk - off, this.allocated + off);
      this.allocated += chunk;
    }
  }

  /** Cuts the zeros ahead of the records (a segment that rolls or closes ends with its last record). */
  private cutPreallocated(fd: number): boolean {
    const cut = this.current !== undefined && this.allocated > this.current.bytes;
    if (cut) ftruncateSync(fd, this.current!.bytes);
    this.allocated = 0;
    return cut;
  }

  /** A sync within LAZY_SYNC_MS for batches nobody waits on, unless a group commit takes them first. */
  private syncLazily(): void {
    if (this.lazyTimer !== undefined) return;
    this.lazyTimer = setTimeout(() => {
      this.lazyTimer = undefined;
      this.startSync();
    }, LAZY_SYNC_MS);
    this.lazyTimer.unref();
  }

  /**
   * Someone waits on a record to be durable: start the group commit now, or once the
   * sessions the last one released are back (commit-gather.ts), at the latest by a timer.
   */
  private requestSync(): void {
    if (this.syncing || this.failure || this.gather.urgentWaiting === 0) return;
    if (this.gather.startNow(performance.now())) return this.startSync();
    if (this.gatherTimer !== undefined) return;
    this.gatherTimer = setTimeout(() => {
      this.gatherTimer = undefined;
      this.startSync();
    }, GATHER_MAX_MS);
  }

  /** Starts an fdatasync unless one is running; it covers everything written so far. */
  private startSync(): void {
    if (this.syncing || this.failure || this.fd === undefined) return;
    if (this.writtenSeq === this.syncedSeq && this.awaitingSync.length === 0) return;
    if (this.gatherTimer !== undefined) clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    const covered = this.awaitingSync;
    this.awaitingSync = [];
    const coveredUrgent = this.gather.started();
    const coveredSeq = this.writtenSeq;
    const coveredHash = this.writtenHash;
    this.syncing = true;
    this.fsyncs++;
    const started = performance.now();
    this.inflight = this.doFsync(this.fd).then(
      () => {
        const ended = performance.now();
        this.fsyncStats.observe(ended - started);
        this.gather.ended(coveredUrgent, ended);
        this.syncing = false;
        this.closeRetired();
        if (coveredSeq > this.syncedSeq) {
          this.syncedSeq = coveredSeq;
          this.syncedHash = coveredHash;
          this.opts.onSynced();
        }
        if (this.headWanted) this.writeHeadNow();
        for (const b of covered) b.resolveDurable();
        // Waiting batches that someone awaits start the next sync (now or once gathered); lazy ones keep their timer.
        if (this.gather.urgentWaiting > 0) this.requestSync();
        else if (this.awaitingSync.length > 0) this.syncLazily();
      },
      (e: unknown) => {
        this.syncing = false;
        this.closeRetired();
        this.fail(new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, `audit spool fsync failed: ${(e as Error).message}`, { cause: e }));
        for (const b of covered) b.rejectDurable(this.failure!);
      },
    );
  }

  /**
   * Starts a new segment named by its first seq. The old one is synced first (so its
   * records are durable before it is closed) and the chain head is saved, so the chain
   * survives even if every older segment is later delivered and deleted.
   */
  private roll(firstSeq: number): void {
    if (this.fd !== undefined) {
      this.cutPreallocated(this.fd);
      this.syncNow(this.fd);
      if (this.syncing) this.retired.push(this.fd);
      else closeSync(this.fd);
      this.fd = undefined;
      if (this.writtenSeq > this.syncedSeq) {
        this.syncedSeq = this.writtenSeq;
        this.syncedHash = this.writtenHash;
        this.opts.onSynced();
      }
      for (const b of this.awaitingSync) b.resolveDurable();
      this.awaitingSync = [];
      this.gather.started(); // the roll's own sync covered them
    }
    writeHeadSync(this.opts.dir, { seq: this.writtenSeq, hash: this.writtenHash });
    const segment: SegmentInfo = { firstSeq, path: join(this.opts.dir, segmentFileName(firstSeq)), bytes: 0 };
    // Not O_APPEND: records overwrite the zeros written ahead of them (positioned writes).
    this.fd = openSync(segment.path, constants.O_RDWR | constants.O_CREAT, 0o600);
    // A file of that name can only be left over from a crash that recovery found empty: continue after what it holds.
    segment.bytes = fstatSync(this.fd).size;
    this.allocated = segment.bytes;
    fsyncDirSync(this.opts.dir);
    this.opts.segments.push(segment);
    this.current = segment;
  }

  /**
   * Keeps head.json current while running: after the next sync, the synced head is saved
   * (off the event loop, one write at a time, the newest head winning). Recovery reads it
   * to notice records lost behind it; an operator reads it to see where the chain is.
   */
  saveHeadSoon(): void {
    this.headWanted = true;
    // Buffered mode syncs on its timer; strict on the next group commit. If nothing is
    // waiting for a sync, what is synced now is the head to save.
    if (!this.syncing && this.writtenSeq === this.syncedSeq && this.pending === undefined) this.writeHeadNow();
  }

  private writeHeadNow(): void {
    if (this.headWrite !== undefined || this.failure) return;
    // At most once a second: under load a checkpoint comes every checkpointEvery records,
    // and two fsyncs per head write would cost more than the records themselves.
    const wait = this.lastHeadWriteAt + HEAD_SAVE_MIN_MS - Date.now();
    if (wait > 0) {
      if (this.headTimer === undefined) {
        this.headTimer = setTimeout(() => {
          this.headTimer = undefined;
          if (this.headWanted && this.writtenSeq === this.syncedSeq) this.writeHeadNow();
        }, wait);
        this.headTimer.unref();
      }
      return;
    }
    this.lastHeadWriteAt = Date.now();
    this.headWanted = false;
    const head = { seq: this.syncedSeq, hash: this.syncedHash, updatedAt: new Date().toISOString() };
    this.headWrite = writeHead(this.opts.dir, head).then(
      () => {
        this.headWrite = undefined;
        if (this.headWanted && this.writtenSeq === this.syncedSeq) this.writeHeadNow();
      },
      (e: unknown) => {
        this.headWrite = undefined;
        this.opts.log.warn({ err: e }, 'audit spool head.json could not be saved');
      },
    );
  }

  /** A synchronous fdatasync (segment roll, close), counted and timed like the others. */
  private syncNow(fd: number): void {
    const started = performance.now();
    fdatasyncSync(fd);
    this.fsyncs++;
    this.fsyncStats.observe(performance.now() - started);
  }

  private closeRetired(): void {
    for (const fd of this.retired) closeSync(fd);
    this.retired = [];
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.opts.log.error({ err: error }, 'audit spool failed: refusing new audit records');
    for (const b of this.awaitingSync) b.rejectDurable(error);
    this.awaitingSync = [];
    this.opts.onFailure(error);
  }

  /** Writes what is pending, fsyncs everything, saves the head and closes the segment. */
  async close(): Promise<void> {
    this.flush();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.lazyTimer) clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    while (this.syncing) await this.inflight;
    this.headWanted = false;
    if (this.headTimer !== undefined) clearTimeout(this.headTimer);
    this.headTimer = undefined;
    while (this.headWrite !== undefined) await this.headWrite;
    if (this.fd !== undefined && !this.failure) {
      try {
        const cut = this.cutPreallocated(this.fd);
        if (cut || this.writtenSeq > this.syncedSeq || this.awaitingSync.length > 0) {
          const covered = this.awaitingSync;
          this.awaitingSync = [];
          this.syncNow(this.fd);
          this.syncedSeq = this.writtenSeq;
          this.syncedHash = this.writtenHash;
          for (const b of covered) b.resolveDurable();
          this.opts.onSynced();
        }
        writeHeadSync(this.opts.dir, { seq: this.writtenSeq, hash: this.writtenHash });
      } catch (e) {
        this.fail(new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, `audit spool fsync failed at close: ${(e as Error).message}`, { cause: e }));
      }
    }
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.closeRetired();
  }
}

const NOOP = (): void => {};

/**
 * One batch per event-loop turn, its promises shared by every receipt of the turn. In
 * buffered mode `durable` IS `spooled` (the SPEC's buffered durability is the spool
 * write), so a turn costs one promise, not two.
 */
function newBatch(durableIsSpooled = false): PendingBatch {
  let resolveSpooled!: () => void;
  let rejectSpooled!: (e: Error) => void;
  const spooled = new Promise<void>((res, rej) => {
    resolveSpooled = res;
    rejectSpooled = rej;
  });
  // Callers that ignore a receipt must not crash the process with an unhandled
  // rejection; callers that await it still see the error.
  spooled.catch(NOOP);
  if (durableIsSpooled) {
    return { spooled, durable: spooled, lines: [], after: undefined, urgentRecords: 0, lastSeq: 0, lastHash: '', resolveSpooled, rejectSpooled, resolveDurable: NOOP, rejectDurable: NOOP };
  }
  let resolveDurable!: () => void;
  let rejectDurable!: (e: Error) => void;
  const durable = new Promise<void>((res, rej) => {
    resolveDurable = res;
    rejectDurable = rej;
  });
  durable.catch(NOOP);
  return { spooled, durable, lines: [], after: undefined, urgentRecords: 0, lastSeq: 0, lastHash: '', resolveSpooled, rejectSpooled, resolveDurable, rejectDurable };
}

function runAfter(batch: PendingBatch, error: Error | undefined): void {
  const after = batch.after;
  if (after === undefined) return;
  batch.after = undefined;
  for (const fn of after) fn(error);
}

function failBatch(batch: PendingBatch, error: Error): void {
  batch.rejectSpooled(error);
  batch.rejectDurable(error);
}

function rejectedBatch(error: Error): SpoolBatch {
  const b = newBatch();
  failBatch(b, error);
  return b;
}
