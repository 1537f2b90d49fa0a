/**
 * Audit lines → CloudWatch log events.
 *
 * Oversize records are SPLIT, never truncated: CloudWatch takes at most 256 KiB per event
 * (message bytes + 26), and a truncated record could no longer be checked against its hash.
 * A line too big for one event becomes k fragment events, each a JSON object
 *   {"v":1,"seq":N,"fragment":{"part":i,"parts":k},"chunk":"<piece of the original line>"}
 * and concatenating the `chunk`s of parts 1..k in order gives back the exact line. Every
 * event, whole or fragment, starts with `"v"` and `"seq"`, so the stream stays queryable by
 * seq and the sink can tell exactly how far a stream got (see position.ts).
 *
 * Timestamps: the record's own `ts`, clamped into what PutLogEvents accepts (not older than
 * 14 days, not more than 2 h ahead; we keep a margin) and never below the previous event's,
 * because a call must be in time order and the stream's newest-by-time event must be the
 * highest seq. The exact time stays in the message.
 */
import type { AuditRecord } from '../../core/plugin.ts';

/** Per-event overhead CloudWatch adds to the message size. */
export const EVENT_OVERHEAD_BYTES = 26;
export const MAX_EVENT_BYTES = 256 * 1024;
export const MAX_MESSAGE_BYTES = MAX_EVENT_BYTES - EVENT_OVERHEAD_BYTES;

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
/** Oldest accepted is 14 days; stay an hour inside so a slow call is not rejected. */
const OLDEST_MS = 14 * DAY_MS - HOUR_MS;
/** Newest accepted is 2 h ahead; stay well inside. */
const NEWEST_MS = HOUR_MS;
/** UTF-16 units per fragment: ≤ 3 UTF-8 bytes each (no lone surrogates reach here) + escapes. */
const FRAGMENT_UNITS = 80_000;

export interface LogEvent {
  seq: number;
  /** 1 for a whole record; 1..parts for fragments. */
  part: number;
  parts: number;
  timestamp: number;
  message: string;
  /** UTF-8 bytes of `message`. */
  bytes: number;
}

/** Position of one event in the stream's order: (seq, part). */
export interface StreamPosition {
  seq: number;
  part: number;
}

export function isAfter(event: StreamPosition, held: StreamPosition): boolean {
  return event.seq > held.seq || (event.seq === held.seq && event.part > held.part);
}

export function clampTimestamp(recordTs: string, previous: number, now: number): number {
  const parsed = Date.parse(recordTs);
  const own = Number.isFinite(parsed) ? parsed : now;
  const inWindow = Math.min(Math.max(own, now - OLDEST_MS), now + NEWEST_MS);
  return Math.max(inWindow, previous);
}

function fragmentMessage(seq: number, part: number, parts: number, chunk: string): string {
  return JSON.stringify({ v: 1, seq, fragment: { part, parts }, chunk });
}

/** Cut a line into pieces whose fragment messages each fit in one event. */
export function splitLine(line: string, seq: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < line.length) {
    let units = FRAGMENT_UNITS;
    for (;;) {
      let end = Math.min(start + units, line.length);
      // Never split a surrogate pair: both halves would turn into lone surrogates.
      const last = line.charCodeAt(end - 1);
      if (end < line.length && last >= 0xd800 && last <= 0xdbff) end = end - 1 > start ? end - 1 : end + 1;
      const piece = line.slice(start, end);
      // `parts` is at most 7 digits more than a placeholder; measure with a generous one.
      if (Buffer.byteLength(fragmentMessage(seq, 9_999_999, 9_999_999, piece), 'utf8') <= MAX_MESSAGE_BYTES) {
        pieces.push(piece);
        start = end;
        break;
      }
      units = Math.floor(units / 2);
    }
  }
  return pieces;
}

/** The events for a run of records, in order. */
export function toEvents(
  records: readonly AuditRecord[],
  lines: readonly string[],
  opts: { previousTimestamp: number; now: number },
): LogEvent[] {
  const events: LogEvent[] = [];
  let previous = opts.previousTimestamp;
  records.forEach((record, i) => {
    const line = lines[i] as string;
    const timestamp = clampTimestamp(record.ts, previous, opts.now);
    previous = timestamp;
    const bytes = Buffer.byteLength(line, 'utf8');
    if (bytes <= MAX_MESSAGE_BYTES) {
      events.push({ seq: record.seq, part: 1, parts: 1, timestamp, message: line, bytes });
      return;
    }
    const pieces = splitLine(line, record.seq);
    pieces.forEach((piece, p) => {
      const message = fragmentMessage(record.seq, p + 1, pieces.length, piece);
      events.push({ seq: record.seq, part: p + 1, parts: pieces.length, timestamp, message, bytes: Buffer.byteLength(message, 'utf8') });
    });
  });
  return events;
}

/** Parse the position an event message stands for; undefined when it is not ours. */
export function positionOf(message: string): StreamPosition | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const { seq, fragment } = parsed as { seq?: unknown; fragment?: unknown };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  if (fragment === undefined) return { seq, part: 1 };
  const part = (fragment as { part?: unknown } | null)?.part;
  if (typeof part !== 'number' || !Number.isSafeInteger(part) || part < 1) return undefined;
  return { seq, part };
}

/**
 * Pack events into PutLogEvents calls: ≤ 10,000 events, ≤ 1 MiB (message bytes + 26 per
 * event), all timestamps within 24 h of the call's first (we keep a minute of margin).
 */
export const MAX_CALL_EVENTS = 10_000;
export const MAX_CALL_BYTES = 1024 * 1024;
const MAX_CALL_SPAN_MS = DAY_MS - 60_000;

export function packCalls(events: readonly LogEvent[]): LogEvent[][] {
  const calls: LogEvent[][] = [];
  let current: LogEvent[] = [];
  let bytes = 0;
  for (const event of events) {
    const size = event.bytes + EVENT_OVERHEAD_BYTES;
    const first = current[0];
    if (
      first !== undefined &&
      (current.length >= MAX_CALL_EVENTS || bytes + size > MAX_CALL_BYTES || event.timestamp - first.timestamp > MAX_CALL_SPAN_MS)
    ) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(event);
    bytes += size;
  }
  if (current.length > 0) calls.push(current);
  return calls;
}
