/**
 * Unauthenticated noise kept from crowding out real work (issue 11 item 4). Every failed
 * authentication is accounted for, but not every one is a record:
 *
 * - per source address and interval, the first FULL_PER_INTERVAL failures are recorded in
 *   full (`auth.failed`); the rest are counted into one `auth.failed.summary` per source
 *   per interval (count, codes, a sample, first and last time);
 * - noise is written only while the spool has headroom: full records below
 *   NOISE_FULL_SHARE of `audit.spoolMaxBytes`, summaries below NOISE_SUMMARY_SHARE, so the
 *   rest stays for grants and sessions of authenticated agents. A failure that could not be
 *   recorded in full for lack of room is counted as `dropped` in its source's next summary
 *   (and in /metrics); a summary that cannot be written keeps its counts for the next one.
 *
 * So `auth.failed` records plus the `count` of every summary equal the failures seen.
 */
import type { AuditReceipt } from '../plugin.ts';
import type { MetricSample } from '../metrics/prometheus.ts';

export const FULL_PER_INTERVAL = 20;
export const NOISE_FULL_SHARE = 0.5;
export const NOISE_SUMMARY_SHARE = 0.75;
/** Sources tracked at once; beyond it every pending summary is written and the table starts again. */
const MAX_SOURCES = 10_000;

interface Pending {
  count: number;
  dropped: number;
  codes: Record<string, number>;
  sample: Record<string, unknown> | undefined;
  first: string | undefined;
  last: string | undefined;
}

interface SourceState {
  windowStart: number;
  full: number;
  pending: Pending;
}

export interface DigestOptions {
  intervalMs: number;
  /** Share of the spool cap in use now (0..1+). */
  spoolUse: () => number;
  /** Writes a record (the recorder's own append). */
  write: (type: string, data: Record<string, unknown>, resource?: string) => AuditReceipt;
}

const NOT_RECORDED: AuditReceipt = { seq: -1, spooled: Promise.resolve(), durable: Promise.resolve() };

const emptyPending = (): Pending => ({ count: 0, dropped: 0, codes: {}, sample: undefined, first: undefined, last: undefined });

export class AuthFailureDigest {
  private readonly sources = new Map<string, SourceState>();
  private timer: NodeJS.Timeout | undefined;
  private readonly totals = { failures: 0, full: 0, summarized: 0, dropped: 0, summaries: 0, summariesDeferred: 0 };

  constructor(private readonly opts: DigestOptions) {}

  /** One failed authentication from `address`: a full record, or counted for the summary. */
  note(address: string, data: Record<string, unknown>, resource?: string): AuditReceipt {
    const now = Date.now();
    this.totals.failures++;
    const state = this.stateOf(address, now);
    if (now - state.windowStart >= this.opts.intervalMs) this.roll(address, state, now);
    if (state.full < FULL_PER_INTERVAL) {
      if (this.opts.spoolUse() < NOISE_FULL_SHARE) {
        state.full++;
        this.totals.full++;
        return this.opts.write('auth.failed', data, resource);
      }
      state.pending.dropped++;
      this.totals.dropped++;
    }
    this.count(state.pending, data, now, resource);
    this.arm();
    return NOT_RECORDED;
  }

  /** Write every pending summary now (shutdown, tests). */
  flush(): void {
    const now = Date.now();
    for (const [address, state] of this.sources) this.roll(address, state, now);
  }

  metricSamples(): MetricSample[] {
    const t = this.totals;
    return [
      { name: 'airlock_auth_failures_seen_total', help: 'Failed authentications on every front since start.', type: 'counter', values: [{ value: t.failures }] },
      {
        name: 'airlock_auth_failures_recorded_total',
        help: 'Failed authentications by how the audit holds them: in full, or counted in a summary.',
        type: 'counter',
        values: [
          { labels: { as: 'full' }, value: t.full },
          { labels: { as: 'summary' }, value: t.summarized },
        ],
      },
      { name: 'airlock_auth_failures_dropped_total', help: 'Failed authentications not recorded in full for lack of spool headroom (counted in summaries).', type: 'counter', values: [{ value: t.dropped }] },
      { name: 'airlock_auth_failure_summaries_deferred_total', help: 'Summaries held back for lack of spool headroom (their counts carry over).', type: 'counter', values: [{ value: t.summariesDeferred }] },
    ];
  }

  private stateOf(address: string, now: number): SourceState {
    let state = this.sources.get(address);
    if (state === undefined) {
      if (this.sources.size >= MAX_SOURCES) {
        this.flush();
        for (const [a, s] of this.sources) if (s.pending.count === 0) this.sources.delete(a);
      }
      state = { windowStart: now, full: 0, pending: emptyPending() };
      this.sources.set(address, state);
    }
    return state;
  }

  private count(p: Pending, data: Record<string, unknown>, now: number, resource: string | undefined): void {
    const ts = new Date(now).toISOString();
    p.count++;
    const code = String(data['code'] ?? 'UNKNOWN');
    p.codes[code] = (p.codes[code] ?? 0) + 1;
    p.sample ??= resource === undefined ? data : { ...data, resource };
    p.first ??= ts;
    p.last = ts;
  }

  /** End a source's interval: its summary (if any and if there is room), then a new window. */
  private roll(address: string, state: SourceState, now: number): void {
    const p = state.pending;
    if (p.count > 0) {
      if (this.opts.spoolUse() >= NOISE_SUMMARY_SHARE) {
        this.totals.summariesDeferred++;
      } else {
        const receipt = this.opts.write('auth.failed.summary', { source: address, count: p.count, dropped: p.dropped, codes: p.codes, sample: p.sample, first: p.first, last: p.last, intervalMs: this.opts.intervalMs });
        receipt.spooled.catch(() => {});
        this.totals.summarized += p.count;
        this.totals.summaries++;
        state.pending = emptyPending();
      }
    }
    state.windowStart = now;
    state.full = 0;
  }

  /** One timer while summaries are pending: writes those whose interval ended. */
  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      let pending = false;
      for (const [address, state] of this.sources) {
        if (now - state.windowStart >= this.opts.intervalMs) {
          this.roll(address, state, now);
          // A source quiet for a whole interval is forgotten (its next failure starts afresh).
          if (state.pending.count === 0) this.sources.delete(address);
        }
        if (state.pending.count > 0) pending = true;
      }
      if (pending) this.arm();
    }, Math.max(50, Math.floor(this.opts.intervalMs / 4)));
    this.timer.unref();
  }
}
