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

export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit = AUTH_FAILURES_PER_WINDOW,
    private readonly windowMs = AUTH_FAILURE_WINDOW_MS,
  ) {}

  /** True when the source's address is past its failure budget. Consult only after a failure. */
  blocked(source: string): boolean {
    return this.recent(addressOf(source)).length >= this.limit;
  }

  fail(source: string): void {
    const address = addressOf(source);
    const list = this.recent(address);
    list.push(Date.now());
    // Only the last `limit` matter for the sliding window: the list stays bounded.
    if (list.length > this.limit) list.splice(0, list.length - this.limit);
    this.failures.set(address, list);
    if (this.failures.size > 10_000) this.sweep();
  }

  private recent(address: string): number[] {
    const cutoff = Date.now() - this.windowMs;
    const list = (this.failures.get(address) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.failures.delete(address);
    else this.failures.set(address, list);
    return list;
  }

  private sweep(): void {
    for (const source of [...this.failures.keys()]) this.recent(source);
  }
}
