/** Small facts about grant statuses shared by the service and its view of the store. */
import type { GrantEndReason, GrantStatus } from '../plugin.ts';

/** A grant that can still be used or approved. */
export function isLive(status: GrantStatus): boolean {
  return status === 'active' || status === 'pending';
}

/** Why a grant that is no longer live ended, as the `ended` grant event says it. */
export function endReasonOf(status: GrantStatus): GrantEndReason {
  switch (status) {
    case 'revoked':
      return 'revoked';
    case 'expired':
      return 'expired';
    case 'denied':
      return 'denied';
    default:
      return 'error';
  }
}
