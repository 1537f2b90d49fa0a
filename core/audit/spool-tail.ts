/**
 * Follows the audit spool's segment files from a seq onward, without taking part in the
 * pipeline's delivery bookkeeping: a reader here never holds back segment deletion and
 * never makes the pipeline delete a segment earlier than its sinks allow. The console's
 * index and the notifier read records this way, each from its own position.
 *
 * Only complete lines are read, so a batch being written is picked up on the next read.
 */
import { promises as fsp } from 'node:fs';
import type { AuditRecord } from '../plugin.ts';
import { listSegments, type SegmentInfo } from './segments.ts';
import { recordFrom } from './spool-line.ts';
import { scanCompleteLines } from './spool-reader.ts';

export interface TailRead {
  records: AuditRecord[];
  /** Seqs that were deleted from the spool before this reader saw them. */
  missed: { from: number; to: number } | undefined;
}

export class SpoolTail {
  private segment: SegmentInfo | undefined;
  private offset = 0;

  /** @param nextSeq the first seq wanted */
  constructor(
    private readonly dir: string,
    public nextSeq: number,
  ) {}

  /** Up to `max` records from `nextSeq` on, in seq order (empty when nothing new). */
  async read(max: number): Promise<TailRead> {
    let missed: TailRead['missed'];
    const out: AuditRecord[] = [];
    let rereads = 0;
    while (out.length < max) {
      if (!this.segment) {
        const located = await this.locate();
        if (!located) break;
        missed ??= located.missed;
      }
      const gone = await this.readCurrent(out, max);
      if (out.length >= max) break;
      const next = await this.nextSegment();
      if (!next) {
        if (gone) this.segment = undefined;
        break;
      }
      // The writer appends its last batch to a segment before it starts the next one; if
      // the next one starts later than what we hold, read the current one once more.
      if (next.firstSeq > this.nextSeq && !gone && rereads++ < 1) continue;
      if (next.firstSeq > this.nextSeq) {
        missed ??= { from: this.nextSeq, to: next.firstSeq - 1 };
        this.nextSeq = next.firstSeq;
      }
      this.segment = next;
      this.offset = 0;
      rereads = 0;
    }
    return { records: out, missed };
  }

  private async locate(): Promise<{ missed: TailRead['missed'] } | undefined> {
    const segments = await listSegments(this.dir).catch(() => []);
    if (segments.length === 0) return undefined;
    let chosen = segments[0]!;
    for (const s of segments) if (s.firstSeq <= this.nextSeq) chosen = s;
    let missed: TailRead['missed'];
    if (chosen.firstSeq > this.nextSeq) {
      missed = { from: this.nextSeq, to: chosen.firstSeq - 1 };
      this.nextSeq = chosen.firstSeq;
    }
    this.segment = chosen;
    this.offset = 0;
    return { missed };
  }

  private async nextSegment(): Promise<SegmentInfo | undefined> {
    const current = this.segment;
    if (!current) return undefined;
    const segments = await listSegments(this.dir).catch(() => []);
    return segments.find((s) => s.firstSeq > current.firstSeq);
  }

  /** Reads complete lines of the current segment from `offset`; true when the file is gone. */
  private async readCurrent(out: AuditRecord[], max: number): Promise<boolean> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.segment!.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw e;
    }
    try {
      await scanCompleteLines(fh, this.offset, (bytes, lineEnd) => {
        this.offset = lineEnd;
        const kept = recordFrom(bytes, this.nextSeq);
        if (kept === undefined) return false;
        const { record } = kept;
        out.push(record);
        this.nextSeq = record.seq + 1;
        return out.length >= max;
      });
      return false;
    } finally {
      await fh.close();
    }
  }
}
