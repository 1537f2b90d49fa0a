/** Failed-login counters of one process (the file store): a fixed window per source. */
import type { FailureCounters } from './types.ts';

const MAX_SOURCES = 10_000;

export class MemoryFailureCounters implements FailureCounters {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async hit(source: string, windowMs: number): Promise<number> {
    const now = this.now();
    const w = this.current(source, windowMs, now);
    if (w) {
      w.count++;
      return w.count;
    }
    if (this.windows.size >= MAX_SOURCES) this.sweep(windowMs, now);
    this.windows.set(source, { start: now, count: 1 });
    return 1;
  }

  async count(source: string, windowMs: number): Promise<number> {
    return this.current(source, windowMs, this.now())?.count ?? 0;
  }

  async reset(source: string): Promise<void> {
    this.windows.delete(source);
  }

  private current(source: string, windowMs: number, now: number): { start: number; count: number } | undefined {
    const w = this.windows.get(source);
    if (w && now - w.start < windowMs) return w;
    if (w) this.windows.delete(source);
    return undefined;
  }

  private sweep(windowMs: number, now: number): void {
    for (const [source, w] of this.windows) if (now - w.start >= windowMs) this.windows.delete(source);
  }
}
