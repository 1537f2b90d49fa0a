/**
 * Reads records back for sinks: recent records from memory, older ones (a sink that fell
 * behind, or records written before a restart) from the segment files.
 */
import { promises as fsp } from 'node:fs';
import type { AuditRecord } from '../plugin.ts';
import type { SegmentInfo } from './segments.ts';
import { recordFrom } from './spool-line.ts';

export interface RecordSlice {
  records: AuditRecord[];
  lines: string[];
}

/**
 * How far past `capacity` and `maxChars` the ring grows to keep records a sink has yet to
 * read. A buffered spool hands sinks only what its last periodic sync covered, so a sink
 * trails the writer by a sync interval and more: at 8-10k statements a second that is
 * 1,000-2,000 records, past a ring of 1,024, and every read went to the segment files.
 */
const RETAIN_FACTOR = 4;

/** The most recently appended records, in seq order. */
export class RecentRecords {
  private records: AuditRecord[] = [];
  private lines: string[] = [];
  private firstSeq: number;
  /** Characters of the lines held: records vary from 300 bytes to a megabyte of SQL. */
  private chars = 0;
  /** Held records (and characters) at which `push` next looks for records to drop. */
  private dropAtRecords: number;
  private dropAtChars: number;

  /**
   * Holds the newest `capacity` records and `maxChars` characters of line text, dropping
   * older ones in bulk once twice that is held (so `push` stays cheap) — except records
   * `wanted` says a reader still needs (seq ≥ wanted()), kept while no more than
   * `RETAIN_FACTOR` times both bounds is held (checked again after each further `capacity`
   * records or `maxChars` characters). Memory stays bounded whatever the records' sizes and
   * however far a sink falls behind; a sink further behind reads the segment files.
   */
  constructor(
    nextSeq: number,
    private readonly capacity: number,
    private readonly maxChars: number,
    private readonly wanted: () => number = () => Number.POSITIVE_INFINITY,
  ) {
    this.firstSeq = nextSeq;
    this.dropAtRecords = capacity * 2;
    this.dropAtChars = maxChars * 2;
  }

  push(record: AuditRecord, line: string): void {
    this.records.push(record);
    this.lines.push(line);
    this.chars += line.length;
    if (this.records.length >= this.dropAtRecords || this.chars >= this.dropAtChars) this.dropOldest();
  }

  private dropOldest(): void {
    const wanted = this.wanted();
    const hardRecords = this.capacity * RETAIN_FACTOR;
    const hardChars = this.maxChars * RETAIN_FACTOR;
    let drop = 0;
    for (;;) {
      const held = this.records.length - drop;
      if (held <= this.capacity && this.chars <= this.maxChars) break;
      if (this.firstSeq + drop >= wanted && held <= hardRecords && this.chars <= hardChars) break;
      this.chars -= this.lines[drop]!.length;
      drop++;
    }
    this.records.splice(0, drop);
    this.lines.splice(0, drop);
    this.firstSeq += drop;
    // Look again after another bulk's worth, not at every push while readers hold records.
    this.dropAtRecords = Math.max(this.capacity * 2, this.records.length + this.capacity);
    this.dropAtChars = Math.max(this.maxChars * 2, this.chars + this.maxChars);
  }

  has(seq: number): boolean {
    return seq >= this.firstSeq && seq < this.firstSeq + this.records.length;
  }

  slice(from: number, upTo: number, max: number): RecordSlice {
    const start = from - this.firstSeq;
    const end = Math.min(start + max, upTo - this.firstSeq + 1, this.records.length);
    return { records: this.records.slice(start, end), lines: this.lines.slice(start, end) };
  }
}

/** Where a sequential reader stopped, so the next batch does not rescan the segment. */
export interface DiskPosition {
  path: string;
  offset: number;
  nextSeq: number;
}

const CHUNK = 1 << 20;
const NEWLINE = 0x0a;

/** Records with seq in [from, upTo], at most `max`, from the segment files. */
export async function readFromSegments(
  segments: readonly SegmentInfo[],
  from: number,
  upTo: number,
  max: number,
  position: DiskPosition | undefined,
): Promise<RecordSlice & { position: DiskPosition | undefined }> {
  const out: RecordSlice = { records: [], lines: [] };
  let index: number;
  let offset = 0;
  const resumeAt = position && position.nextSeq === from ? segments.findIndex((s) => s.path === position.path) : -1;
  if (resumeAt >= 0) {
    index = resumeAt;
    offset = position!.offset;
  } else {
    index = -1;
    for (let i = 0; i < segments.length; i++) if (segments[i]!.firstSeq <= from) index = i;
    if (index < 0) index = 0;
  }
  let next: DiskPosition | undefined = position;
  for (; index < segments.length && out.records.length < max; index++, offset = 0) {
    const segment = segments[index]!;
    if (segment.firstSeq > upTo) break;
    const done = await readSegment(segment.path, offset, from, upTo, max, out, (pos) => (next = pos));
    if (done) break;
  }
  return { ...out, position: next };
}

/** Returns true when the range or `max` was reached inside this segment. */
async function readSegment(
  path: string,
  startOffset: number,
  from: number,
  upTo: number,
  max: number,
  out: RecordSlice,
  setPosition: (p: DiskPosition) => void,
): Promise<boolean> {
  const fh = await fsp.open(path, 'r');
  try {
    return await scanCompleteLines(fh, startOffset, (bytes, lineEnd) => {
      // Lines before `from` are passed unparsed: a reader without a position starts at the
      // segment's first line (tens of thousands of them).
      const kept = recordFrom(bytes, from);
      if (kept === undefined) return false;
      const { text: line, record } = kept;
      if (record.seq > upTo) return true;
      out.records.push(record);
      out.lines.push(line);
      setPosition({ path, offset: lineEnd, nextSeq: record.seq + 1 });
      return out.records.length >= max;
    });
  } finally {
    await fh.close();
  }
}

/**
 * Reads a segment's complete lines from `startOffset`, a chunk at a time, handing each line
 * (its bytes without the newline: a view valid only during the call) and the file offset
 * just past it to `visit` until `visit` returns true (then resolves true) or the complete
 * lines run out (false). A line still being written is left for the next read. The one
 * line reader of the spool: sinks catching up and spool followers. The first NUL byte ends
 * the written part (the writer's preallocated space, segments.ts).
 */
export async function scanCompleteLines(fh: fsp.FileHandle, startOffset: number, visit: (line: Buffer, lineEnd: number) => boolean): Promise<boolean> {
  let fileOffset = startOffset; // file offset of `pending[0]`
  let pending = Buffer.alloc(0);
  const chunk = Buffer.allocUnsafe(CHUNK);
  for (;;) {
    const { bytesRead } = await fh.read(chunk, 0, CHUNK, fileOffset + pending.length);
    if (bytesRead === 0) return false;
    const nul = chunk.subarray(0, bytesRead).indexOf(0);
    const usable = nul >= 0 ? nul : bytesRead;
    pending = pending.length === 0 ? Buffer.from(chunk.subarray(0, usable)) : Buffer.concat([pending, chunk.subarray(0, usable)]);
    let lineStart = 0;
    for (let nl = pending.indexOf(NEWLINE); nl >= 0; nl = pending.indexOf(NEWLINE, lineStart)) {
      const line = pending.subarray(lineStart, nl);
      lineStart = nl + 1;
      if (visit(line, fileOffset + lineStart)) return true;
    }
    fileOffset += lineStart;
    pending = pending.subarray(lineStart);
    if (nul >= 0) return false;
  }
}
