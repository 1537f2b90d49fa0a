/**
 * An in-memory index of the audit records the console shows, fed as records reach the
 * spool (and from the spool at start), so a filtered, paged audit page costs a lookup in
 * posting lists, never a re-read of the spool.
 *
 * Records are held in seq order; each filterable field (agent, grant, resource, type,
 * session) maps to the ascending seqs that carry it. A query walks the shortest matching
 * list from the newest end. The oldest records are dropped past `capacity`.
 */
import type { AuditRecord } from '../plugin.ts';
import { ChainState } from './chain-state.ts';

export interface AuditQuery {
  agent?: string | undefined;
  grant?: string | undefined;
  resource?: string | undefined;
  type?: string | undefined;
  session?: string | undefined;
  /** Inclusive bounds on `ts`, in ms since the epoch. */
  since?: number | undefined;
  until?: number | undefined;
  /** Only records with a seq below this (paging to older records). */
  before?: number | undefined;
  limit: number;
}

export interface AuditPage {
  records: AuditRecord[];
  /** Pass as `before` for the next (older) page; undefined on the last page. */
  older: number | undefined;
}

const FIELDS = ['agent', 'grant', 'resource', 'type', 'session'] as const;
type Field = (typeof FIELDS)[number];

export type RecordListener = (record: AuditRecord) => void;

export class AuditIndex {
  private records: AuditRecord[] = [];
  private firstSeq = 0;
  private postings = new Map<string, number[]>();
  private readonly listeners = new Set<RecordListener>();

  constructor(
    readonly chain: ChainState,
    private readonly capacity = 500_000,
  ) {}

  get size(): number {
    return this.records.length;
  }

  get lastSeq(): number | undefined {
    return this.records.at(-1)?.seq;
  }

  /** Records in seq order; a gap (records deleted unseen) restarts the index there. */
  async add(batch: readonly AuditRecord[], gap = false): Promise<void> {
    if (gap) this.chain.gap();
    for (const r of batch) {
      const last = this.records.at(-1);
      if (last && r.seq <= last.seq) continue;
      if (last && r.seq !== last.seq + 1) this.chain.gap();
      if (this.records.length === 0) this.firstSeq = r.seq;
      else if (r.seq !== last!.seq + 1) this.resetTo(r.seq);
      this.records.push(r);
      for (const f of FIELDS) {
        const v = r[f];
        if (v !== undefined) this.post(`${f}\u0000${v}`, r.seq);
      }
      await this.chain.check(r);
      for (const l of this.listeners) l(r);
    }
    if (this.records.length > this.capacity) this.trim(this.records.length - Math.floor(this.capacity * 0.9));
  }

  subscribe(listener: RecordListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  query(q: AuditQuery): AuditPage {
    const out: AuditRecord[] = [];
    const candidates = this.candidates(q);
    const upper = this.upperBound(q);
    // Walk seqs newest first, either from a posting list or over the whole range.
    let i = candidates ? lastIndexBelow(candidates, upper) : upper - 1 - this.firstSeq;
    let older: number | undefined;
    for (; i >= 0; i--) {
      const seq = candidates ? candidates[i]! : this.firstSeq + i;
      const r = this.records[seq - this.firstSeq];
      if (!r) continue;
      if (q.since !== undefined && Date.parse(r.ts) < q.since) break;
      if (!this.matches(r, q)) continue;
      if (out.length === q.limit) {
        older = out.at(-1)!.seq;
        break;
      }
      out.push(r);
    }
    return { records: out, older };
  }

  private candidates(q: AuditQuery): number[] | undefined {
    let best: number[] | undefined;
    for (const f of FIELDS) {
      const v = q[f];
      if (v === undefined) continue;
      const list = this.postings.get(`${f}\u0000${v}`) ?? [];
      if (!best || list.length < best.length) best = list;
    }
    return best;
  }

  /** Exclusive upper seq bound from `before` and `until` (binary search on ts). */
  private upperBound(q: AuditQuery): number {
    let upper = (this.lastSeq ?? this.firstSeq - 1) + 1;
    if (q.before !== undefined) upper = Math.min(upper, q.before);
    if (q.until !== undefined) {
      let lo = 0;
      let hi = this.records.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (Date.parse(this.records[mid]!.ts) <= q.until) lo = mid + 1;
        else hi = mid;
      }
      upper = Math.min(upper, this.firstSeq + lo);
    }
    return upper;
  }

  private matches(r: AuditRecord, q: AuditQuery): boolean {
    for (const f of FIELDS) if (q[f] !== undefined && r[f] !== q[f]) return false;
    if (q.until !== undefined && Date.parse(r.ts) > q.until) return false;
    return true;
  }

  private post(key: string, seq: number): void {
    const list = this.postings.get(key);
    if (list) list.push(seq);
    else this.postings.set(key, [seq]);
  }

  private resetTo(seq: number): void {
    this.records = [];
    this.postings = new Map();
    this.firstSeq = seq;
  }

  private trim(drop: number): void {
    this.records.splice(0, drop);
    this.firstSeq += drop;
    const next = new Map<string, number[]>();
    for (const [key, list] of this.postings) {
      const kept = list.slice(firstIndexAtLeast(list, this.firstSeq));
      if (kept.length > 0) next.set(key, kept);
    }
    this.postings = next;
  }
}

/** Index of the last element below `bound` in an ascending list, or -1. */
function lastIndexBelow(list: readonly number[], bound: number): number {
  return firstIndexAtLeast(list, bound) - 1;
}

function firstIndexAtLeast(list: readonly number[], bound: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < bound) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
