import type { GrantRecord } from './record.ts';

/**
 * Where grants live. The local implementation persists to dataDir; a shared store (for
 * several gateways) implements the same two calls.
 */
export interface GrantStore {
  /** Every grant still worth knowing (recently ended ones included). */
  load(): Promise<GrantRecord[]>;
  /** Persist the current state of one grant; resolves once durable. */
  put(record: GrantRecord): Promise<void>;
  close(): Promise<void>;
}
