/**
 * Grant events: the one way news of a grant leaves GrantService. The service publishes;
 * the hub subscribes the session registry (cut live sessions), the AWS layer (drop cached
 * role sessions) and the plugins' lifecycle hooks. Nobody calls back into the service, so a
 * revocation walks api → grants → event → registry → plugin closer and never returns.
 */
import type { Grant, GrantEndReason } from '../plugin.ts';

export type GrantEvent =
  /** `remote`: another replica activated it (and already ran the plugin's onGrantActive). */
  | { kind: 'activated'; grant: Grant; remote?: boolean }
  | { kind: 'ended'; grant: Grant; reason: GrantEndReason };

/** A subscriber; a returned promise is awaited for `activated` (a hook may refuse). */
export type GrantEventListener = (event: GrantEvent) => void | Promise<void>;

export class GrantEvents {
  private readonly listeners: GrantEventListener[] = [];

  /** Subscribers run in subscription order. Returns an unsubscribe function. */
  subscribe(fn: GrantEventListener): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /**
   * `activated`: awaited in order; the first failure is thrown (the grant must not go
   * active). `ended`: every subscriber runs whatever the others do; synchronous work (cutting
   * sessions) is done when this returns, asynchronous work is awaited by the returned promise
   * and its failures are reported to `onError`, never thrown.
   */
  async publish(event: GrantEvent, onError: (e: unknown) => void = () => {}): Promise<void> {
    if (event.kind === 'activated') {
      for (const fn of [...this.listeners]) await fn(event);
      return;
    }
    const pending: Promise<void>[] = [];
    for (const fn of [...this.listeners]) {
      try {
        const r = fn(event);
        if (r instanceof Promise) pending.push(r.catch(onError));
      } catch (e) {
        onError(e);
      }
    }
    await Promise.all(pending);
  }
}
