/**
 * What the MCP host needs to know of grant events: a signal per tool call that fires when
 * the call's grant ends (revocation, expiry), and a wait for a grant's next change (the
 * `grant_status` long-poll). It only listens to GrantEvents; it never calls the service.
 */
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { GrantEndReason } from '../plugin.ts';
import type { GrantEvents } from '../grants/events.ts';

export class GrantWatch {
  private readonly cuts = new Map<string, Set<AbortController>>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly unsubscribe: () => void;

  constructor(events: GrantEvents) {
    this.unsubscribe = events.subscribe((e) => {
      if (e.kind === 'ended') this.cut(e.grant.id, e.reason);
      this.wake(e.grant.id);
    });
  }

  /**
   * A signal aborted when grant `grantId` ends (with an AirlockError saying why), or when
   * `outer` aborts (the client cancelled). Call `release` once the call is over.
   */
  callSignal(grantId: string, outer: AbortSignal | undefined): { signal: AbortSignal; release: () => void } {
    const controller = new AbortController();
    let set = this.cuts.get(grantId);
    if (!set) this.cuts.set(grantId, (set = new Set()));
    set.add(controller);
    const onOuter = () => controller.abort(outer?.reason ?? new AirlockError(ErrorCodes.BAD_REQUEST, 'the client cancelled the call'));
    outer?.addEventListener('abort', onOuter, { once: true });
    if (outer?.aborted) onOuter();
    const release = () => {
      outer?.removeEventListener('abort', onOuter);
      set.delete(controller);
      if (set.size === 0 && this.cuts.get(grantId) === set) this.cuts.delete(grantId);
    };
    return { signal: controller.signal, release };
  }

  /** Resolve on the grant's next event (approval, denial, revocation, expiry) or after `ms`. */
  nextChange(grantId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(grantId);
      if (!set) this.waiters.set(grantId, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(grantId) === set) this.waiters.delete(grantId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  close(): void {
    this.unsubscribe();
    for (const id of [...this.waiters.keys()]) this.wake(id);
  }

  private cut(grantId: string, reason: GrantEndReason): void {
    const set = this.cuts.get(grantId);
    if (!set) return;
    const code = reason === 'expired' ? ErrorCodes.GRANT_EXPIRED : reason === 'revoked' ? ErrorCodes.GRANT_REVOKED : ErrorCodes.GRANT_DENIED;
    for (const c of [...set]) c.abort(new AirlockError(code, `airlock grant ${grantId} ${reason === 'error' ? 'ended on an error' : reason === 'expired' ? 'expired' : `was ${reason}`}`));
  }

  private wake(grantId: string): void {
    for (const fn of [...(this.waiters.get(grantId) ?? [])]) fn();
  }
}
