/**
 * Offline verification of audit output (file sink `.jsonl`, S3 sink `.jsonl.gz`, spool
 * segments): every record's own hash, the chain of `prev` links in seq order, no seq gaps,
 * ascending order inside each file, and every checkpoint's signature and position.
 *
 * Files may be given in any order and may overlap (a re-delivered batch, a segment copied
 * twice): identical duplicates of a seq are ignored and counted; different records with
 * the same seq are a failure. The FIRST bad record in seq order is reported.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { JWK } from 'jose';
import { GENESIS_HASH, recordHash } from './canonical.ts';
import { verifyCheckpoint } from './checkpoint.ts';

export interface VerifyOptions {
  /** Ed25519 public keys (with `kid`) that may sign checkpoints. */
  publicKeys: JWK[];
  /** When set, checkpoints from another gateway are a failure. */
  gatewayId?: string;
  /**
   * Hold the log to this checkpoint interval from its first record. Without it, the
   * interval is learnt from the log itself: each signed checkpoint states it, and so does
   * `gateway.started`.
   */
  checkpointIntervalMs?: number;
}

export interface VerifyFailure {
  file: string;
  /** 1-based line in `file`. */
  line: number;
  seq?: number;
  reason: string;
}

export interface VerifyResult {
  ok: boolean;
  files: number;
  /** Distinct records (after dropping identical duplicates). */
  records: number;
  firstSeq?: number;
  lastSeq?: number;
  /** True when the first record is seq 1 (nothing before it can be missing). */
  fromGenesis: boolean;
  /** Checkpoints whose signature and position verified. */
  checkpoints: number;
  /** Records after the last verified checkpoint (not yet covered by a signature). */
  unsignedTail: number;
  /** Record time of the unsigned tail: its first and last `ts`, and the span in ms. */
  unsignedTailFrom?: string;
  unsignedTailTo?: string;
  unsignedTailSpanMs?: number;
  /** The checkpoint interval the log was held to at its end (undefined: none known). */
  checkpointIntervalMs?: number;
  /** `ts` of the last record. */
  lastTs?: string;
  /** Hash of the last record (to compare with a live gateway's head). */
  lastHash?: string;
  /** Identical repeats of a seq that were ignored. */
  duplicates: number;
  /** Where the first few duplicates were seen. */
  duplicateSamples: Array<{ seq: number; file: string; line: number }>;
  failure?: VerifyFailure;
}

/** A file that cannot be read at all (missing, not gzip): a usage problem, not tampering. */
export class VerifyInputError extends Error {
  override readonly name = 'VerifyInputError';
}

interface Entry {
  /** Sort key: the seq, or for an unreadable line a value just after the line before it. */
  key: number;
  seq: number;
  hash: string;
  prev: string;
  type: string;
  jws: unknown;
  /** Record time (ms since epoch) and its text. */
  ts: number;
  tsText: string;
  /** `data.checkpointIntervalMs` of a `gateway.started` record. */
  startedInterval: number | undefined;
  file: string;
  line: number;
  problem?: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const OUTCOMES = new Set(['ok', 'denied', 'error']);

export async function verifyAuditFiles(paths: string[], opts: VerifyOptions): Promise<VerifyResult> {
  const entries: Entry[] = [];
  for (const path of paths) {
    const stream = await openLog(path);
    const fileEntries = new FileEntries(path);
    try {
      let lineNo = 0;
      for await (const line of splitLines(stream)) {
        lineNo++;
        fileEntries.add(line, lineNo);
      }
    } catch (e) {
      throw new VerifyInputError(`cannot read ${path}: ${(e as Error).message}`);
    }
    entries.push(...fileEntries.entries);
  }
  return verifyEntries(entries, paths.length, opts);
}

/** The same checks over records already in memory (sink read-backs); line = index + 1. */
export async function verifyRecords(records: readonly unknown[], opts: VerifyOptions, label = '(records)'): Promise<VerifyResult> {
  const fileEntries = new FileEntries(label);
  records.forEach((r, i) => fileEntries.add(JSON.stringify(r), i + 1));
  return verifyEntries(fileEntries.entries, 1, opts);
}

/** Parses one file's lines, checking each record's own hash and the in-file order. */
class FileEntries {
  readonly entries: Entry[] = [];
  private lastSeq = 0;

  constructor(private readonly file: string) {}

  add(text: string, line: number): void {
    if (text.trim() === '') return;
    const entry = parseEntry(text, this.file, line, this.lastSeq);
    if (!entry.problem && entry.seq < this.lastSeq) {
      entry.problem = `out of order: seq ${entry.seq} comes after seq ${this.lastSeq} in the same file (lines moved)`;
    }
    if (!entry.problem) this.lastSeq = Math.max(this.lastSeq, entry.seq);
    this.entries.push(entry);
  }
}

function parseEntry(text: string, file: string, line: number, seqBefore: number): Entry {
  const bad = (problem: string): Entry => ({ key: seqBefore + 0.5, seq: NaN, hash: '', prev: '', type: '', jws: undefined, ts: NaN, tsText: '', startedInterval: undefined, file, line, problem });
  let rec: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return bad('not an audit record: not a JSON object');
    rec = parsed as Record<string, unknown>;
  } catch {
    return bad('not an audit record: invalid JSON (line edited or torn)');
  }
  const { seq, hash, prev, type } = rec;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return bad('not an audit record: bad seq');
  const data = rec.data as { jws?: unknown; checkpointIntervalMs?: unknown } | undefined;
  const tsText = typeof rec.ts === 'string' ? rec.ts : '';
  const entry: Entry = {
    key: seq,
    seq,
    hash: typeof hash === 'string' ? hash : '',
    prev: typeof prev === 'string' ? prev : '',
    type: typeof type === 'string' ? type : '',
    jws: data?.jws,
    ts: Date.parse(tsText),
    tsText,
    startedInterval: type === 'gateway.started' && isInterval(data?.checkpointIntervalMs) ? data.checkpointIntervalMs : undefined,
    file,
    line,
  };
  if (rec.v !== 1 && rec.v !== 2) entry.problem = `unsupported record version ${JSON.stringify(rec.v)}`;
  else if (!HEX64.test(entry.hash) || !HEX64.test(entry.prev)) entry.problem = 'not an audit record: bad hash or prev';
  else if (entry.type === '' || Number.isNaN(entry.ts) || !OUTCOMES.has(rec.outcome as string)) entry.problem = 'not an audit record: missing type, ts or outcome';
  else if (recordHash(rec) !== entry.hash) entry.problem = 'hash mismatch: the record was edited';
  return entry;
}

async function verifyEntries(entries: Entry[], files: number, opts: VerifyOptions): Promise<VerifyResult> {
  const keys = new Map<string, JWK>();
  for (const k of opts.publicKeys) if (typeof k.kid === 'string') keys.set(k.kid, k);
  entries.sort((a, b) => a.key - b.key); // stable: equal seqs keep file/line order
  const result: VerifyResult = { ok: true, files, records: 0, fromGenesis: false, checkpoints: 0, unsignedTail: 0, duplicates: 0, duplicateSamples: [] };
  let last: Entry | undefined;
  let interval = opts.checkpointIntervalMs;
  const stretch = new UnsignedStretch();
  const fail = (e: Entry, reason: string): VerifyResult => {
    result.ok = false;
    result.failure = { file: e.file, line: e.line, ...(Number.isNaN(e.seq) ? {} : { seq: e.seq }), reason };
    return result;
  };
  for (const e of entries) {
    if (e.problem) return fail(e, e.problem);
    if (last && e.seq === last.seq) {
      if (e.hash !== last.hash) return fail(e, `conflicting records for seq ${e.seq} (the other is ${last.file}:${last.line})`);
      result.duplicates++;
      if (result.duplicateSamples.length < 5) result.duplicateSamples.push({ seq: e.seq, file: e.file, line: e.line });
      continue;
    }
    if (last) {
      if (e.seq !== last.seq + 1) {
        const missing = e.seq - last.seq - 1 === 1 ? `seq ${last.seq + 1} is missing` : `seqs ${last.seq + 1}..${e.seq - 1} are missing`;
        return fail(e, `seq gap: ${missing} (records deleted)`);
      }
      if (e.prev !== last.hash) return fail(e, `prev does not match the hash of seq ${last.seq} (record deleted, replaced or reordered)`);
    } else {
      result.firstSeq = e.seq;
      result.fromGenesis = e.seq === 1;
      if (e.seq === 1 && e.prev !== GENESIS_HASH) return fail(e, 'seq 1 does not start from the genesis hash');
    }
    if (e.type === 'checkpoint') {
      const check = await verifyCheckpoint(e.jws, { seq: e.seq, prev: e.prev }, keys, opts.gatewayId);
      if (!check.ok) return fail(e, check.reason);
      // The interval this checkpoint vouches for covers the stretch it closes.
      const promised = opts.checkpointIntervalMs ?? check.payload.checkpointIntervalMs;
      if (isInterval(promised)) interval = promised;
      const tooLong = stretch.exceeds(interval);
      if (tooLong) return fail(e, tooLong);
      result.checkpoints++;
      result.unsignedTail = 0;
      stretch.reset();
    } else {
      if (e.startedInterval !== undefined && opts.checkpointIntervalMs === undefined) interval = e.startedInterval;
      stretch.add(e);
      const tooLong = stretch.exceeds(interval);
      if (tooLong) return fail(e, tooLong);
      result.unsignedTail++;
    }
    result.records++;
    result.lastSeq = e.seq;
    result.lastTs = e.tsText;
    result.lastHash = e.hash;
    last = e;
  }
  if (interval !== undefined) result.checkpointIntervalMs = interval;
  if (stretch.first && stretch.lastEntry) {
    result.unsignedTailFrom = stretch.first.tsText;
    result.unsignedTailTo = stretch.lastEntry.tsText;
    result.unsignedTailSpanMs = stretch.spanMs;
  }
  return result;
}

function isInterval(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/**
 * The records since the last verified checkpoint. A gateway signs before its unsigned
 * records span its checkpoint interval of record time (pipeline.ts), so a longer stretch
 * means checkpoints were taken out: the log was cut, or rewritten with the chain
 * recomputed (a rewrite cannot re-sign).
 */
class UnsignedStretch {
  first: Entry | undefined;
  lastEntry: Entry | undefined;
  private minTs = 0;
  private maxTs = 0;

  add(e: Entry): void {
    if (!this.first) {
      this.first = e;
      this.minTs = e.ts;
      this.maxTs = e.ts;
    }
    this.lastEntry = e;
    if (e.ts < this.minTs) this.minTs = e.ts;
    if (e.ts > this.maxTs) this.maxTs = e.ts;
  }

  get spanMs(): number {
    return this.maxTs - this.minTs;
  }

  exceeds(interval: number | undefined): string | undefined {
    if (interval === undefined || !this.first || !this.lastEntry || this.spanMs <= interval) return undefined;
    return (
      `no signed checkpoint for ${formatMs(this.spanMs)} of record time (seq ${this.first.seq} at ${this.first.tsText} ` +
      `to seq ${this.lastEntry.seq} at ${this.lastEntry.tsText}); the gateway signs at least every ${formatMs(interval)}: ` +
      'checkpoints were removed (log cut, or rewritten with the chain recomputed)'
    );
  }

  reset(): void {
    this.first = undefined;
    this.lastEntry = undefined;
  }
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10}s` : `${ms}ms`;
}

/** Opens a log file, gunzipping when it starts with the gzip magic bytes. */
async function openLog(path: string): Promise<Readable> {
  let magic: Buffer;
  try {
    const fh = await open(path, 'r');
    try {
      magic = Buffer.alloc(2);
      const { bytesRead } = await fh.read(magic, 0, 2, 0);
      magic = magic.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new VerifyInputError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const raw = createReadStream(path);
  if (magic.length === 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
    const gunzip = createGunzip();
    raw.on('error', (e) => gunzip.destroy(e));
    return raw.pipe(gunzip);
  }
  return raw;
}

/**
 * Lines without their `\n`; a '\n' byte never occurs inside a UTF-8 sequence. A spool
 * segment still being written (or left by a crash) ends in NUL bytes, space the writer
 * preallocated (core/audit/segments.ts): the first NUL ends the lines, and anything but NUL
 * after it is an error, so a NUL cannot hide records behind it.
 */
async function* splitLines(stream: Readable): AsyncGenerator<string> {
  let rest: Buffer = Buffer.alloc(0);
  let inNulTail = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (inNulTail) {
      if (!allNul(chunk)) throw new Error(NUL_INSIDE);
      continue;
    }
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      if (!allNul(chunk.subarray(nul))) throw new Error(NUL_INSIDE);
      inNulTail = true;
    }
    const lines = nul >= 0 ? chunk.subarray(0, nul) : chunk;
    let buf = rest.length > 0 ? Buffer.concat([rest, lines]) : lines;
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      yield buf.subarray(start, nl).toString('utf8');
      start = nl + 1;
    }
    rest = Buffer.from(buf.subarray(start));
    buf = rest;
  }
  if (rest.length > 0) yield rest.toString('utf8');
}

const NUL_INSIDE = 'a NUL byte followed by other bytes (only the preallocated tail of a spool segment holds NUL bytes)';
const ZERO_BLOCK = Buffer.alloc(64 * 1024);

function allNul(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += ZERO_BLOCK.length) {
    const part = b.subarray(i, i + ZERO_BLOCK.length);
    if (!part.equals(ZERO_BLOCK.subarray(0, part.length))) return false;
  }
  return true;
}
