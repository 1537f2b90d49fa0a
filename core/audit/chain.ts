/**
 * The gateway's single hash chain: allocates seq numbers and links each record to the
 * previous one. Pure and synchronous so `append` can hand out seq numbers in call order.
 */
import type { AuditOutcome, AuditRecord } from '../plugin.ts';
import { AirlockError, ErrorCodes } from '../errors.ts';
import { canonicalJson, canonicalPlain, encodeRecordLine, hashEncodedRecord, type EncodedRecordFields } from './canonical.ts';

export interface AuditInput {
  type: string;
  agent?: string | undefined;
  grant?: string | undefined;
  session?: string | undefined;
  resource?: string | undefined;
  task?: string | undefined;
  data?: Record<string, unknown> | undefined;
  outcome: AuditOutcome;
  /** Not part of the record: nobody awaits its `durable` (strict syncs it with the next group commit). */
  lazy?: boolean | undefined;
}

const OUTCOMES: ReadonlySet<string> = new Set(['ok', 'denied', 'error']);
const OUTCOME_JSON: Readonly<Record<AuditOutcome, string>> = { ok: '"ok"', denied: '"denied"', error: '"error"' };
const OPTIONAL_STRINGS = ['agent', 'grant', 'session', 'resource', 'task'] as const;

/**
 * JSON-encoded forms of the strings that repeat record after record (agent, grant,
 * resource, task, session, type): a session's identity fields are the same string objects
 * every time, so a Map hit (V8 caches a string's hash) replaces a JSON.stringify and an
 * allocation. Bounded: cleared when full.
 */
class EncodedStrings {
  private readonly map = new Map<string, string>();
  encode(value: string): string {
    let e = this.map.get(value);
    if (e === undefined) {
      if (value.length > 4096) return JSON.stringify(value);
      if (this.map.size >= 4096) this.map.clear();
      e = JSON.stringify(value);
      this.map.set(value, e);
    }
    return e;
  }
}

export class HashChain {
  private readonly strings = new EncodedStrings();
  /** The last record time and its encoded text: many records share a millisecond. */
  private lastMs = NaN;
  private lastTs = '';
  private lastTsJson = '';

  constructor(
    public lastSeq: number,
    public lastHash: string,
  ) {}

  /** Builds the next record (field order of docs/contract.md "Audit records") and its JSONL line. */
  next(input: AuditInput, now: Date = new Date()): { record: AuditRecord; line: string } {
    if (typeof input.type !== 'string' || input.type === '') {
      throw new AirlockError(ErrorCodes.INTERNAL, 'audit record needs a non-empty type');
    }
    if (!OUTCOMES.has(input.outcome)) {
      throw new AirlockError(ErrorCodes.INTERNAL, `audit record has invalid outcome ${JSON.stringify(input.outcome)}`);
    }
    const seq = this.lastSeq + 1;
    const ms = now.getTime();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastTs = now.toISOString();
      this.lastTsJson = '"' + this.lastTs + '"';
    }
    const ts = this.lastTs;
    const record: Record<string, unknown> = { v: 1, seq, ts, type: input.type };
    const fields: EncodedRecordFields = { seq, ts: this.lastTsJson, type: this.strings.encode(input.type), outcome: OUTCOME_JSON[input.outcome], prev: this.lastHash };
    for (const key of OPTIONAL_STRINGS) {
      const value = input[key];
      if (value === undefined) continue;
      if (typeof value !== 'string') throw new AirlockError(ErrorCodes.INTERNAL, `audit field ${key} must be a string`);
      record[key] = value;
      fields[key] = this.strings.encode(value);
    }
    if (input.data !== undefined) {
      const data = encodeData(input.data);
      fields.data = data;
      record.data = data.value;
    }
    record.outcome = input.outcome;
    record.prev = this.lastHash;
    const hash = hashEncodedRecord(fields);
    record.hash = hash;
    this.lastSeq = seq;
    this.lastHash = hash;
    return { record: record as unknown as AuditRecord, line: encodeRecordLine(fields, hash) };
  }
}

/**
 * The data's JSON text for the line, its canonical text for the hash and the value a
 * reader parses back. Serialised once: JSON.stringify for the line, one walk for the
 * canonical text and the normalised copy (canonicalPlain); only data outside the plain
 * subset (a Date, a class instance) takes the round trip.
 */
export function encodeData(data: Record<string, unknown>): { value: Record<string, unknown>; json: string; canonical: string } {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (e) {
    throw new AirlockError(ErrorCodes.INTERNAL, `audit data is not serializable: ${(e as Error).message}`);
  }
  if (json === undefined || json[0] !== '{') {
    throw new AirlockError(ErrorCodes.INTERNAL, 'audit data must be a JSON object');
  }
  const copy = { v: undefined as unknown };
  const canonical = canonicalPlain(data, copy);
  if (canonical !== undefined && copy.v !== null && typeof copy.v === 'object' && !Array.isArray(copy.v)) {
    return { value: copy.v as Record<string, unknown>, json, canonical };
  }
  const value = normalizeData(json);
  return { value, json, canonical: canonicalJson(value) };
}

/**
 * JSON round trip, so what we hash is exactly what any reader parses back (drops
 * undefined, applies toJSON, turns non-finite numbers into null). The line carries the
 * same JSON text that was parsed, so a reader gets this very value.
 */
function normalizeData(json: string): Record<string, unknown> {
  const value: unknown = JSON.parse(json);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new AirlockError(ErrorCodes.INTERNAL, 'audit data must be a JSON object');
  }
  return value as Record<string, unknown>;
}
