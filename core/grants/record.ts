import type { GrantStatus } from '../plugin.ts';
import type { GrantVerifiers } from './credentials.ts';

/** A grant as stored: everything but the secret. */
export interface GrantRecord {
  id: string;
  agent: string;
  resource: string;
  resourceType: string;
  access: string;
  scope: Record<string, unknown>;
  task: string;
  status: GrantStatus;
  createdAt: string;
  approvedAt: string | null;
  approvedBy: string | null;
  expiresAt: string | null;
  /** A pending grant not approved by then expires unused. */
  pendingUntil: string | null;
  ttlMs: number;
  revokedAt: string | null;
  revokedBy: string | null;
  /** Set when an admin (or a failed activation) turned the grant down. */
  deniedAt?: string | null;
  deniedBy?: string | null;
  denyReason?: string | null;
  policy: number;
  verifiers: GrantVerifiers;
}
