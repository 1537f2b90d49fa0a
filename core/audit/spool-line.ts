/**
 * A spool line's seq, read in place from its bytes, so a reader looking for a seq can pass
 * the lines before it without decoding or parsing them.
 *
 * A v2 line begins `{"v":2,"seq":<digits>,` — the chain writes that prefix itself
 * (chain.ts), so the digits are the record's own seq. A v1 line (written by a gateway
 * before v2, possibly still in a spool after an upgrade) has no fixed prefix: its seq is
 * read by parsing the line. A reader that keeps a line still parses it, and checks the
 * parsed seq against the prefix (`recordFrom`).
 */
import type { AuditRecord } from '../plugin.ts';

const V2_PREFIX = Buffer.from('{"v":2,"seq":');
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const COMMA = 0x2c;
/** Digits read at most: seqs this long fit a double exactly; a longer run is left to JSON.parse. */
const MAX_SEQ_DIGITS = 15;

/** The seq of a v2 line from its prefix, or undefined (a v1 line, or not a line we wrote). */
export function leadingSeq(line: Buffer): number | undefined {
  const start = V2_PREFIX.length;
  if (line.length <= start || line.compare(V2_PREFIX, 0, start, 0, start) !== 0) return undefined;
  const end = Math.min(line.length, start + MAX_SEQ_DIGITS + 1); // the digits and their comma
  let seq = 0;
  for (let i = start; i < end; i++) {
    const c = line[i]!;
    if (c === COMMA) return i > start ? seq : undefined;
    if (c < DIGIT_0 || c > DIGIT_9) return undefined;
    seq = seq * 10 + (c - DIGIT_0);
  }
  return undefined;
}

/**
 * The line's record if its seq is `from` or later, else undefined: a v2 line before `from`
 * is passed by its prefix, unparsed; any other line is parsed, and a v2 line whose body
 * holds another seq than its prefix is refused (fail closed).
 */
export function recordFrom(line: Buffer, from: number): { text: string; record: AuditRecord } | undefined {
  const prefixSeq = leadingSeq(line);
  if (prefixSeq !== undefined && prefixSeq < from) return undefined;
  const text = line.toString('utf8');
  const record = JSON.parse(text) as AuditRecord;
  if (prefixSeq !== undefined && record.seq !== prefixSeq) {
    throw new Error(`spool line for seq ${prefixSeq} parses as seq ${String(record.seq)}`);
  }
  return record.seq < from ? undefined : { text, record };
}
