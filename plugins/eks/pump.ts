/**
 * An ordered relay for one direction of a stream: messages are delivered in arrival order,
 * each batch only after its audit record has reached the point the caller waits for
 * (spooled before anything goes upstream; durable before anything reaches the client in
 * strict mode). Batching comes for free: whatever arrives while a record is being written
 * rides in the next batch, so a chatty stream costs few records.
 */
import type { Frame } from './exec-capture.ts';

const MAX_BATCH_FRAMES = 256;

export class RecordedPump {
  private readonly queue: Frame[] = [];
  private queuedBytes = 0;
  private running = false;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly hooks: {
      /** Record a batch; resolve when it may be delivered. Undefined: nothing to wait for. */
      record(batch: readonly Frame[]): Promise<void> | undefined;
      deliver(frame: Frame): void;
      /** Resolves when the receiving side can take more (backpressure). */
      writable(): Promise<void>;
      /** The audit failed: the stream must end (fail closed). */
      fail(error: unknown): void;
    },
  ) {}

  /** Bytes waiting to be delivered (callers pause their source above a mark). */
  get pending(): number {
    return this.queuedBytes;
  }

  push(frame: Frame): void {
    if (this.stopped) return;
    this.queue.push(frame);
    this.queuedBytes += frame.data.length;
    if (!this.running) void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.settle();
  }

  /** Resolves once everything pushed so far is delivered (or the pump stopped). */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private settle(): void {
    if (this.running && !this.stopped) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const batch = this.queue.splice(0, MAX_BATCH_FRAMES);
        const wait = this.hooks.record(batch);
        if (wait) await wait;
        if (this.stopped) break;
        for (const frame of batch) {
          this.queuedBytes -= frame.data.length;
          this.hooks.deliver(frame);
        }
        await this.hooks.writable();
      }
    } catch (e) {
      this.stopped = true;
      this.queue.length = 0;
      this.hooks.fail(e);
    } finally {
      this.running = false;
      this.settle();
    }
  }
}
