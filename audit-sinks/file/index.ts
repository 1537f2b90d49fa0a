/**
 * File sink: appends the exact spool lines to a JSONL file, fsyncs after each batch.
 *
 * Config: `{ type: file, path, maxBytes? }` (path resolved against the working directory;
 * maxBytes = rotation size, default 64 MiB).
 *
 * Rotation: before a batch that would push `audit.jsonl` past maxBytes, the file is
 * renamed to `audit.<first seq it holds, 12 digits>.jsonl` (for a path without a `.jsonl`
 * ending: `<path>.<first seq>`) and a new file is started. `airlock audit verify
 * audit*.jsonl` checks them all together.
 *
 * Idempotent: on start it reads the tail of its file (or, if that is empty, of the newest
 * rotated file) to learn the last seq it holds, cutting a torn last line a crash left
 * behind, and then skips every seq up to it, so a batch delivered again after a crash
 * leaves no duplicate.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { defineSink, type AuditSink, type SinkBatch, type SinkContext } from '../../core/plugin.ts';

export const fileSinkSchema = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1),
  maxBytes: z.number().int().positive().optional(),
});
export type FileSinkConfig = z.infer<typeof fileSinkSchema>;

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export const fileSink = defineSink<FileSinkConfig>({
  type: 'file',
  schema: fileSinkSchema,
  maxBatch: 500,
  cursorId: (config) => `file:${resolve(config.path)}`,
  create: (config, ctx) => FileSink.open(resolve(config.path), config.maxBytes ?? DEFAULT_MAX_BYTES, ctx),
});

/** Name a rotated file gets: `audit.jsonl` holding seq 1.. becomes `audit.000000000001.jsonl`. */
export function rotatedName(path: string, firstSeq: number): string {
  const seq = String(firstSeq).padStart(12, '0');
  return path.endsWith('.jsonl') ? `${path.slice(0, -'.jsonl'.length)}.${seq}.jsonl` : `${path}.${seq}`;
}

class FileSink implements AuditSink {
  private constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private fh: FileHandle,
    private size: number,
    private firstSeq: number | undefined,
    private lastSeq: number,
  ) {}

  static async open(path: string, maxBytes: number, ctx: Pick<SinkContext, 'log'>): Promise<FileSink> {
    await fsp.mkdir(dirname(path), { recursive: true });
    const fh = await fsp.open(path, 'a+');
    try {
      const state = await readState(fh);
      if (state.tornBytes > 0) {
        ctx.log.warn({ file: path, bytes: state.tornBytes }, 'file sink: cutting a torn last line left by a crash');
        await fh.truncate(state.size);
        await fh.datasync();
      }
      const lastSeq = state.lastSeq ?? (await lastSeqOfNewestRotation(path)) ?? 0;
      return new FileSink(path, maxBytes, fh, state.size, state.firstSeq, lastSeq);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async deliver(batch: SinkBatch): Promise<void> {
    let skip = 0;
    while (skip < batch.records.length && batch.records[skip]!.seq <= this.lastSeq) skip++;
    if (skip === batch.records.length) return;
    const data = Buffer.from(batch.lines.slice(skip).join('\n') + '\n', 'utf8');
    if (this.size > 0 && this.size + data.length > this.maxBytes) await this.rotate();
    let off = 0;
    while (off < data.length) off += (await this.fh.write(data, off, data.length - off)).bytesWritten;
    await this.fh.datasync();
    this.size += data.length;
    this.firstSeq ??= batch.records[skip]!.seq;
    this.lastSeq = batch.records[batch.records.length - 1]!.seq;
  }

  private async rotate(): Promise<void> {
    await this.fh.close();
    const target = rotatedName(this.path, this.firstSeq ?? this.lastSeq);
    // link + unlink instead of rename: never overwrite an existing audit file. If a crash
    // came between the two, the target is this very file (same inode) and is kept.
    try {
      await fsp.link(this.path, target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const [a, b] = await Promise.all([fsp.stat(this.path), fsp.stat(target)]);
      if (a.ino !== b.ino || a.dev !== b.dev) {
        this.fh = await fsp.open(this.path, 'a+');
        throw new Error(`file sink: cannot rotate, ${target} already exists`);
      }
    }
    await fsp.unlink(this.path);
    this.fh = await fsp.open(this.path, 'a+');
    await syncDir(dirname(this.path));
    this.size = 0;
    this.firstSeq = undefined;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

interface FileState {
  /** Bytes of whole lines. */
  size: number;
  tornBytes: number;
  firstSeq: number | undefined;
  lastSeq: number | undefined;
}

const TAIL_CHUNK = 64 * 1024;

/** First and last seq of the file, reading only its head and tail. */
async function readState(fh: FileHandle): Promise<FileState> {
  const { size: total } = await fh.stat();
  if (total === 0) return { size: 0, tornBytes: 0, firstSeq: undefined, lastSeq: undefined };
  // Find the end of the last whole line: grow the window backwards until a newline shows.
  let window = Math.min(total, TAIL_CHUNK);
  for (;;) {
    const buf = Buffer.alloc(window);
    await fh.read(buf, 0, window, total - window);
    const lastNl = buf.lastIndexOf(0x0a);
    const prevNl = lastNl > 0 ? buf.lastIndexOf(0x0a, lastNl - 1) : -1;
    if (lastNl >= 0 && (prevNl >= 0 || window === total)) {
      const size = total - window + lastNl + 1;
      const lastLine = buf.subarray(prevNl + 1, lastNl).toString('utf8');
      return { size, tornBytes: total - size, firstSeq: await firstSeqOf(fh), lastSeq: seqOf(lastLine) };
    }
    if (lastNl < 0 && window === total) return { size: 0, tornBytes: total, firstSeq: undefined, lastSeq: undefined };
    window = Math.min(total, window * 4);
  }
}

async function firstSeqOf(fh: FileHandle): Promise<number | undefined> {
  const buf = Buffer.alloc(TAIL_CHUNK);
  const { bytesRead } = await fh.read(buf, 0, TAIL_CHUNK, 0);
  const m = /"seq":(\d+)/.exec(buf.subarray(0, bytesRead).toString('utf8'));
  return m ? Number(m[1]) : undefined;
}

function seqOf(line: string): number {
  const seq = (JSON.parse(line) as { seq?: unknown }).seq;
  if (typeof seq !== 'number') throw new Error('file sink: last line of the audit file has no seq');
  return seq;
}

/** After a crash between rotation and the first write, the current file is empty. */
async function lastSeqOfNewestRotation(path: string): Promise<number | undefined> {
  const dir = dirname(path);
  const base = basename(path);
  const prefix = base.endsWith('.jsonl') ? base.slice(0, -'.jsonl'.length) + '.' : base + '.';
  const suffix = base.endsWith('.jsonl') ? '.jsonl' : '';
  const rotated = (await fsp.readdir(dir))
    .filter((n) => n.startsWith(prefix) && n.endsWith(suffix) && /^\d{12}$/.test(n.slice(prefix.length, n.length - suffix.length)))
    .sort();
  const newest = rotated[rotated.length - 1];
  if (!newest) return undefined;
  const fh = await fsp.open(join(dir, newest), 'r');
  try {
    return (await readState(fh)).lastSeq;
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
export default fileSink;
