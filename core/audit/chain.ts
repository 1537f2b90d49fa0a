/**
 * The gateway's single hash chain: allocates seq numbers and links each record to the
 * previous one. Pure and synchronous so `append` can hand out seq numbers in call order.
 */
import type { AuditOutcome, AuditRecord } from '../plugin.ts';
import { AirlockError, ErrorCodes } from '../errors.ts';
import { flattened, hashRecordText } from './canonical.ts';

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

  /**
   * Builds the next record and its JSONL line (a v2 record, canonical.ts): the line's text
   * is assembled once in the docs/contract.md field order from fields JSON-encoded once,
   * hashed as it stands, and the hash appended as its last member.
   */
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
    const record: Record<string, unknown> = { v: 2, seq, ts: this.lastTs, type: input.type };
    let text = '{"v":2,"seq":' + seq + ',"ts":' + this.lastTsJson + ',"type":' + this.strings.encode(input.type);
    for (const key of OPTIONAL_STRINGS) {
      const value = input[key];
      if (value === undefined) continue;
      if (typeof value !== 'string') throw new AirlockError(ErrorCodes.INTERNAL, `audit field ${key} must be a string`);
      record[key] = value;
      text += MEMBER_PREFIX[key] + this.strings.encode(value);
    }
    if (input.data !== undefined) {
      const data = encodeData(input.data);
      record.data = data.value;
      text += ',"data":' + data.json;
    }
    record.outcome = input.outcome;
    record.prev = this.lastHash;
    text += ',"outcome":' + OUTCOME_JSON[input.outcome] + ',"prev":"' + this.lastHash + '"';
    const hash = hashRecordText(text + '}');
    record.hash = hash;
    this.lastSeq = seq;
    this.lastHash = hash;
    return { record: record as unknown as AuditRecord, line: flattened(text + ',"hash":"' + hash + '"}') };
  }
}

const MEMBER_PREFIX: Readonly<Record<(typeof OPTIONAL_STRINGS)[number], string>> = {
  agent: ',"agent":',
  grant: ',"grant":',
  session: ',"session":',
  resource: ',"resource":',
  task: ',"task":',
};

/**
 * The data's JSON text for the line (and the hash) and the value a reader parses back from
 * it, which the record object carries: JSON.stringify once, JSON.parse of that text once
 * (drops undefined, applies toJSON, turns non-finite numbers into null), so the record
 * object, the line and the hash agree by construction. Re-serialising the parsed value
 * gives the same text (JSON.parse keeps member order), which is what lets a verifier hash
 * a v2 record from the parsed object alone.
 */
export function encodeData(data: Record<string, unknown>): { value: Record<string, unknown>; json: string } {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (e) {
    throw new AirlockError(ErrorCodes.INTERNAL, `audit data is not serializable: ${(e as Error).message}`);
  }
  if (json === undefined || json.charCodeAt(0) !== 0x7b /* { */) {
    throw new AirlockError(ErrorCodes.INTERNAL, 'audit data must be a JSON object');
  }
  return { value: JSON.parse(json) as Record<string, unknown>, json };
}
