/**
 * The grant state machine as the store enforces it. Both stores call this on the grant's
 * current state while holding it exclusively, so a transition is decided once: the caller
 * that gets a record back won; every other caller sees the winner's state and loses.
 */
import type { GrantStatus } from '../plugin.ts';
import type { GrantTransition, StoredGrant } from './types.ts';

/** Statuses a grant can still leave. */
export const LIVE_STATUSES: readonly GrantStatus[] = ['active', 'pending'];

/** When a live grant ends by itself: its expiry, or the end of its approval window. */
export function deadlineOf(g: StoredGrant): string | null {
  if (g.status === 'active') return g.expiresAt;
  if (g.status === 'pending') return g.pendingUntil;
  return null;
}

/** The next state, or undefined when the current state does not allow the transition. */
export function applyTransition(current: StoredGrant, t: GrantTransition): StoredGrant | undefined {
  const at = new Date(t.at).toISOString();
  switch (t.kind) {
    case 'approve':
      // A pending grant past its approval window is expiring, not approvable.
      if (current.status !== 'pending' || isDue(current, t.at)) return undefined;
      return { ...current, status: 'active', approvedAt: at, approvedBy: t.by, expiresAt: new Date(t.at + current.ttlMs).toISOString(), pendingUntil: null };
    case 'deny':
      if (current.status !== 'pending' || isDue(current, t.at)) return undefined;
      return { ...current, status: 'denied', deniedAt: at, deniedBy: t.by, denyReason: t.reason, pendingUntil: null };
    case 'revoke':
      if (!LIVE_STATUSES.includes(current.status)) return undefined;
      return { ...current, status: 'revoked', revokedAt: at, revokedBy: t.by };
    case 'expire':
      if (!isDue(current, t.at)) return undefined;
      return { ...current, status: 'expired' };
    case 'fail':
      if (!LIVE_STATUSES.includes(current.status)) return undefined;
      return { ...current, status: 'denied', deniedAt: at, deniedBy: 'airlock', denyReason: t.reason, pendingUntil: null };
  }
}

/** A live grant whose deadline has passed at `now`. */
export function isDue(g: StoredGrant, now: number): boolean {
  const deadline = deadlineOf(g);
  return deadline !== null && Date.parse(deadline) <= now;
}

/** When an ended grant ended (for pruning), or undefined while it is live. */
export function endedAt(g: StoredGrant): number | undefined {
  if (LIVE_STATUSES.includes(g.status)) return undefined;
  return Date.parse(g.revokedAt ?? g.deniedAt ?? g.expiresAt ?? g.pendingUntil ?? g.createdAt);
}
