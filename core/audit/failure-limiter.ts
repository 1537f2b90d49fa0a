/**
 * Failed authentications per source address, in a sliding window: the one limiter of the
 * gateway (the control API, every HTTP plugin and, through `auth.failed`, every listener).
 *
 * It limits failures, not identities: a caller checks it only after a credential FAILED
 * to verify, to answer that failure 429 instead of 401. A credential that verifies is
 * never refused, so one guessing client behind a NAT or proxy cannot lock out the team
 * behind the same address (issue 11 item 5, issue 18 item 5).
 */
import { isIP } from 'node:net';

/** Failures one address may make in a window before its further failures are answered 429. */
export const AUTH_FAILURES_PER_WINDOW = 100;
export const AUTH_FAILURE_WINDOW_MS = 60_000;

/**
 * The address part of a recorded source (`1.2.3.4:5678`, `[::1]:5678`, `::1:5678` as
 * some fronts write it, or a bare address): failures are counted per address, not per port.
 */
export function addressOf(source: string | undefined): string {
  if (source === undefined || source === '') return 'unknown';
  if (isIP(source)) return source;
  const bracketed = /^\[([^\]]+)\](?::\d*)?$/.exec(source);
  if (bracketed) return bracketed[1]!;
  const port = /^(.*):\d*$/.exec(source);
  if (port && isIP(port[1]!)) return port[1]!;
  return source;
}

/**
 * Hits per key in a sliding window: `full` once a key has `limit` of them. The one counter
 * behind the failure limiter and the MCP per-agent request budget.
 */
export class SlidingWindow {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  full(key: string): boolean {
    return this.recent(key).length >= this.limit;
  }

  /** Count one; only the last `limit` hits matter for the window, so a key's list stays bounded. */
  hit(key: string): void {
    const list = this.recent(key);
    list.push(Date.now());
    if (list.length > this.limit) list.splice(0, list.length - this.limit);
    this.hits.set(key, list);
    if (this.hits.size > 10_000) this.sweep();
  }

  /** Count one unless the key is full; false then (and that one is not counted). */
  take(key: string): boolean {
    if (this.full(key)) return false;
    this.hit(key);
    return true;
  }

  private recent(key: string): number[] {
    const cutoff = Date.now() - this.windowMs;
    const list = (this.hits.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.hits.delete(key);
    else this.hits.set(key, list);
    return list;
  }

  private sweep(): void {
    for (const key of [...this.hits.keys()]) this.recent(key);
  }
}

export class FailureLimiter {
  private readonly window: SlidingWindow;

  constructor(limit = AUTH_FAILURES_PER_WINDOW, windowMs = AUTH_FAILURE_WINDOW_MS) {
    this.window = new SlidingWindow(limit, windowMs);
  }

  /** True when the source's address is past its failure budget. Consult only after a failure. */
  blocked(source: string): boolean {
    return this.window.full(addressOf(source));
  }

  fail(source: string): void {
    this.window.hit(addressOf(source));
  }
}
