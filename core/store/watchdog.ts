/**
 * Fail closed on the store (SPEC "Shared store and replicas"): a replica that cannot reach
 * its store refuses new grants and new sessions; one that has not confirmed its view for
 * longer than `maxStaleness` also closes its live sessions, since it could be missing a
 * revocation made on another replica. Recovery needs nothing: as soon as the store's health
 * is good again, `refusal()` answers undefined.
 */
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { SharedStore, StoreHealth } from './types.ts';

export const STALE_MESSAGE = 'airlock cannot confirm the grant is still valid';
const CHECK_EVERY_MS = 1_000;

export interface StoreStatus {
  readonly type: 'file' | 'postgres';
  readonly connected: boolean;
  /** Null when the view was never confirmed. */
  readonly viewAgeMs: number | null;
  readonly maxStalenessMs: number | null;
  readonly revision: number;
  readonly headRevision: number;
  readonly stale: boolean;
  readonly lastError?: string;
}

export class StoreWatchdog {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: SharedStore,
    private readonly maxStalenessMs: number,
    /** Called on every check while the view is stale (closes live sessions). */
    private readonly onStale: (message: string) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  check(): void {
    if (this.isStale(this.store.health())) this.onStale(STALE_MESSAGE);
  }

  /** Why new grants and sessions must be refused now, or undefined. */
  refusal(): AirlockError | undefined {
    const h = this.store.health();
    if (!h.connected) {
      const why = h.lastError ?? 'not connected';
      const message = why.startsWith('airlock cannot reach its store') ? why : `airlock cannot reach its store (${h.type === 'postgres' ? 'PostgreSQL' : h.type}): ${why}`;
      return new AirlockError(ErrorCodes.STORE_UNAVAILABLE, message, { rule: 'store' });
    }
    if (this.isStale(h)) {
      return new AirlockError(ErrorCodes.STORE_UNAVAILABLE, `${STALE_MESSAGE}: its view of the store is ${Math.round(h.viewAgeMs / 100) / 10}s old (maxStaleness ${this.maxStalenessMs / 1000}s)`, { rule: 'store' });
    }
    return undefined;
  }

  status(): StoreStatus {
    const h = this.store.health();
    return {
      type: h.type,
      connected: h.connected,
      viewAgeMs: Number.isFinite(h.viewAgeMs) ? h.viewAgeMs : null,
      maxStalenessMs: Number.isFinite(this.maxStalenessMs) ? this.maxStalenessMs : null,
      revision: h.revision,
      headRevision: h.headRevision,
      stale: this.isStale(h),
      ...(h.lastError ? { lastError: h.lastError } : {}),
    };
  }

  private isStale(h: StoreHealth): boolean {
    return h.viewAgeMs > this.maxStalenessMs;
  }
}
