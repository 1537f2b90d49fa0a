/**
 * The spool's on-disk layout and crash recovery.
 *
 * `${dataDir}/spool/` holds append-only segment files named by the seq of their first
 * record, zero-padded to 12 digits (`000000000001.jsonl`), one record per line exactly as
 * sinks receive it. The segment being written may end in NUL bytes: space the writer
 * preallocated (spool-writer.ts), cut off when it rolls or closes; every reader stops at
 * the first NUL, and recovery cuts such a tail without counting it as torn. `head.json` remembers the chain head `{seq, hash}` at each segment roll
 * and at close, so the chain continues even when every segment behind the head was
 * delivered and deleted. `cursors/` holds one file per sink (see cursors.ts).
 */
import { promises as fsp, openSync, fsyncSync, closeSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AirlockError, ErrorCodes } from '../errors.ts';
import { GENESIS_HASH, recordHash } from './canonical.ts';

const SEGMENT_NAME = /^(\d{12})\.jsonl$/;

export interface SegmentInfo {
  firstSeq: number;
  path: string;
  bytes: number;
}

export function segmentFileName(firstSeq: number): string {
  return String(firstSeq).padStart(12, '0') + '.jsonl';
}

export async function listSegments(dir: string): Promise<SegmentInfo[]> {
  const names = await fsp.readdir(dir);
  const segments: SegmentInfo[] = [];
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    const st = await fsp.stat(path);
    segments.push({ firstSeq: Number(m[1]), path, bytes: st.size });
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq);
}

export interface ChainHead {
  seq: number;
  hash: string;
}

export function headPath(dir: string): string {
  return join(dir, 'head.json');
}

/** Atomic (write + fsync + rename) so a crash leaves the old or the new head, never half. */
export function writeHeadSync(dir: string, head: ChainHead): void {
  const tmp = headPath(dir) + '.tmp';
  writeFileSync(tmp, JSON.stringify(head) + '\n');
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, headPath(dir));
  fsyncDirSync(dir);
}

/** The same as writeHeadSync off the event loop (a private temp name, so the two never mix). */
export async function writeHead(dir: string, head: ChainHead & { updatedAt?: string }): Promise<void> {
  const tmp = headPath(dir) + '.tmp-async';
  const fh = await fsp.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(head) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, headPath(dir));
  const d = await fsp.open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

async function readHead(dir: string): Promise<ChainHead | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(headPath(dir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const head = JSON.parse(text) as Partial<ChainHead>;
  if (typeof head.seq !== 'number' || typeof head.hash !== 'string' || !/^[0-9a-f]{64}$/.test(head.hash)) {
    throw new AirlockError(ErrorCodes.INTERNAL, `audit spool ${headPath(dir)} is malformed`);
  }
  return { seq: head.seq, hash: head.hash };
}

/** Makes a created, renamed or deleted directory entry durable. */
export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface Recovery {
  head: ChainHead;
  segments: SegmentInfo[];
  /** Type of the last record found (a clean stop ends with a `checkpoint`). */
  lastType: string | undefined;
  /** What was cut from the tail, for the `gateway.started` record and the log. */
  truncated: Array<{ file: string; bytes: number; lines: number }>;
}

/**
 * Finds the chain head from the newest whole, valid record. A crash mid-write leaves a
 * partial last line (and, after a power failure, possibly garbage lines): those are cut
 * away so the chain continues from the last record that is really there.
 */
export async function recoverSpool(dir: string, log: Logger): Promise<Recovery> {
  const segments = await listSegments(dir);
  const truncated: Recovery['truncated'] = [];
  let tail: (ChainHead & { type: string | undefined }) | undefined;
  while (segments.length > 0 && !tail) {
    const segment = segments[segments.length - 1]!;
    const content = await fsp.readFile(segment.path);
    // What readers read ends at the first NUL; whatever a crash left beyond it (a later block
    // that reached the disk before an earlier one) is cut with the tail and counted as cut.
    const written = endOfWritten(content);
    const left = endOfContent(content);
    const found = lastValidRecord(content.subarray(0, written), segment.firstSeq);
    if (found.end < left) {
      const cut = { file: segment.path, bytes: left - found.end, lines: found.droppedLines + linesIn(content.subarray(written, left)) };
      truncated.push(cut);
      log.warn(cut, 'audit spool: cutting a torn or invalid tail left by a crash');
    }
    if (found.end < content.length) {
      await fsp.truncate(segment.path, found.end);
      segment.bytes = found.end;
    }
    if (found.record) {
      tail = found.record;
    } else {
      await fsp.unlink(segment.path);
      segments.pop();
    }
  }
  const saved = await readHead(dir);
  let head: ChainHead = tail ?? saved ?? { seq: 0, hash: GENESIS_HASH };
  if (tail && saved && saved.seq > tail.seq) {
    // The spool lost records it had once written. Continue after the saved head so seq
    // numbers stay unique; verification will show the gap.
    log.error({ spoolTail: tail.seq, savedHead: saved.seq }, 'audit spool: records missing before the saved chain head');
    head = saved;
  }
  return { head, segments, truncated, lastType: tail !== undefined && head === tail ? tail.type : undefined };
}

const NEWLINE = 0x0a;

/**
 * Where the written part of a segment ends: at its first NUL byte (the writer's
 * preallocated space; no record line holds one), as every reader of the spool stops there.
 */
function endOfWritten(content: Buffer): number {
  const nul = content.indexOf(0);
  return nul < 0 ? content.length : nul;
}

/** Past the last byte that is not NUL: everything a crash left in the file. */
function endOfContent(content: Buffer): number {
  let end = content.length;
  while (end > 0 && content[end - 1] === 0) end--;
  return end;
}

/** Lines in `bytes`: one per newline, and a last one without it. */
function linesIn(bytes: Buffer): number {
  let lines = 0;
  for (let nl = bytes.indexOf(NEWLINE); nl >= 0; nl = bytes.indexOf(NEWLINE, nl + 1)) lines++;
  return bytes.length > 0 && bytes[bytes.length - 1] !== NEWLINE ? lines + 1 : lines;
}

function lastValidRecord(
  content: Buffer,
  firstSeq: number,
): { end: number; record: (ChainHead & { type: string | undefined }) | undefined; droppedLines: number } {
  let end = content.length;
  let droppedLines = 0;
  if (end > 0 && content[end - 1] !== NEWLINE) {
    end = content.lastIndexOf(NEWLINE, end - 1) + 1; // 0 when there is no whole line
    droppedLines++;
  }
  while (end > 0) {
    const start = content.lastIndexOf(NEWLINE, end - 2) + 1;
    const line = content.subarray(start, end - 1).toString('utf8');
    const record = parseValid(line, firstSeq);
    if (record) return { end, record, droppedLines };
    droppedLines++;
    end = start;
  }
  return { end: 0, record: undefined, droppedLines };
}

function parseValid(line: string, firstSeq: number): (ChainHead & { type: string | undefined }) | undefined {
  try {
    const rec = JSON.parse(line) as { seq?: unknown; hash?: unknown; type?: unknown };
    if (typeof rec.seq !== 'number' || rec.seq < firstSeq || typeof rec.hash !== 'string') return undefined;
    if (recordHash(rec) !== rec.hash) return undefined;
    return { seq: rec.seq, hash: rec.hash, type: typeof rec.type === 'string' ? rec.type : undefined };
  } catch {
    return undefined;
  }
}
