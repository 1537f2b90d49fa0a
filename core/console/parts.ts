/**
 * What the console needs from the rest of the gateway, as narrow interfaces: the hub
 * passes the real services, tests and benches may pass their own.
 */
import type { Logger } from 'pino';
import type { AuditRecorder } from '../plugin.ts';
import type { IssuerConfig } from '../config/schema.ts';
import type { PublicGrant } from '../grants/service.ts';
import type { SessionInfo } from '../sessions/registry.ts';
import type { AuditIndex } from './audit-index.ts';

export interface ConsoleGrants {
  list(agent?: string): PublicGrant[];
  publicView(id: string): PublicGrant | undefined;
  approve(id: string, admin: string): Promise<PublicGrant>;
  deny(id: string, admin: string, reason: string): Promise<PublicGrant>;
  revoke(id: string, by: string): Promise<PublicGrant>;
}

export interface ConsoleSessionSource {
  list(): SessionInfo[];
  get(id: string): SessionInfo | undefined;
}

export interface ConsoleParts {
  publicUrl: () => string;
  grants: ConsoleGrants;
  sessions: ConsoleSessionSource;
  /** Verifies a pasted token as the control API does. */
  verifyToken: (token: string) => Promise<{ agent: string; admin: boolean }>;
  issuers: readonly IssuerConfig[];
  admins: readonly string[];
  audit: AuditIndex;
  /**
   * Called before every signed-in page: starts the audit index on first use and waits (a
   * bounded time) until it has caught up with the spool. Absent: the index is always current.
   */
  warmUp?: () => Promise<void>;
  recorder: AuditRecorder;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}
