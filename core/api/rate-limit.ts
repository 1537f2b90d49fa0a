/**
 * Failed authentications per source, in a sliding minute. Past the limit a source is
 * refused before its token is even parsed, so guessing costs the guesser, not the gateway.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit = 20,
    private readonly windowMs = 60_000,
  ) {}

  blocked(source: string): boolean {
    return this.recent(source).length >= this.limit;
  }

  fail(source: string): void {
    const list = this.recent(source);
    list.push(Date.now());
    this.failures.set(source, list);
    if (this.failures.size > 10_000) this.sweep();
  }

  private recent(source: string): number[] {
    const cutoff = Date.now() - this.windowMs;
    const list = (this.failures.get(source) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.failures.delete(source);
    else this.failures.set(source, list);
    return list;
  }

  private sweep(): void {
    for (const source of [...this.failures.keys()]) this.recent(source);
  }
}
