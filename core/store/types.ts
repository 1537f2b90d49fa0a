/**
 * The store replicas share (SPEC "Shared store and replicas"): grants and their state
 * changes, the local issuer's signing key, plugin state, failed-login counters, and a change
 * feed in revision order. Two implementations: the file store (one process, the embedded
 * default) and PostgreSQL (any number of replicas).
 *
 * The rules of every grant transition live in one pure function (transitions.ts) that both
 * implementations apply under their own atomicity (the event loop for the file store, a
 * row lock in a transaction for PostgreSQL), so "exactly one winner" means the same thing
 * in both.
 */
import type { GrantRecord } from '../grants/record.ts';

/** A grant as the store keeps it: the grant service's record, denial fields included. */
export type StoredGrant = GrantRecord;

/** A state change requested of the store; `at` is the caller's clock (epoch ms). */
export type GrantTransition =
  | { readonly kind: 'approve'; readonly by: string; readonly at: number }
  | { readonly kind: 'revoke'; readonly by: string; readonly at: number }
  | { readonly kind: 'deny'; readonly by: string; readonly reason: string; readonly at: number }
  | { readonly kind: 'expire'; readonly at: number }
  /** The replica that activated a grant could not prepare it (a plugin's onGrantActive refused). */
  | { readonly kind: 'fail'; readonly reason: string; readonly at: number };

export type TransitionKind = GrantTransition['kind'];

/**
 * The answer to a compare-and-set transition. `won` is true for exactly one caller per
 * transition across every replica: only that caller writes the audit record
 * (`grant.approved`, `grant.revoked`, `grant.denied`, `grant.expired`).
 */
export type TransitionOutcome =
  | { readonly won: true; readonly record: StoredGrant; readonly previous: StoredGrant; readonly revision: number }
  | {
      readonly won: false;
      /** The grant as it is now (undefined when unknown): what the caller lost to. */
      readonly record: StoredGrant | undefined;
      readonly reason: 'unknown' | 'state';
    };

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export type ChangeOrigin = 'created' | TransitionKind;

/** One entry of the change feed, delivered in revision order, once per store instance. */
export type StoreChange =
  | {
      readonly kind: 'grant';
      readonly revision: number;
      /** The replica that made the change (compare with `SharedStore.replicaId`). */
      readonly origin: string;
      readonly change: ChangeOrigin;
      /** The grant's state right after this change. */
      readonly grant: StoredGrant;
    }
  | {
      readonly kind: 'state';
      readonly revision: number;
      readonly origin: string;
      readonly namespace: string;
      readonly key: string;
      /** Null when the entry was deleted. */
      readonly value: JsonValue | null;
    }
  | {
      /** The history behind the cursor was pruned: replace the whole view with this. */
      readonly kind: 'reset';
      readonly revision: number;
      readonly grants: readonly StoredGrant[];
    };

export type ChangeListener = (change: StoreChange) => void;

export interface StoreSnapshot {
  /** Every grant still worth knowing (recently ended ones included). */
  readonly grants: StoredGrant[];
  /** The revision the snapshot is at; the feed delivers every change after it. */
  readonly revision: number;
}

export interface StateEntry {
  readonly key: string;
  readonly value: JsonValue;
  /** Epoch ms after which the entry no longer exists (undefined: kept until deleted). */
  readonly expiresAt: number | undefined;
}

/** Small namespaced key/value state for plugins (SSM command ledger, provisioned roles). */
export interface PluginStateStore {
  get(namespace: string, key: string): Promise<JsonValue | undefined>;
  /** Write (insert or replace); announced on the change feed. */
  put(namespace: string, key: string, value: JsonValue, options?: { expiresAt?: number }): Promise<void>;
  /** Write only when absent (or expired); true when this call wrote it. */
  putIfAbsent(namespace: string, key: string, value: JsonValue, options?: { expiresAt?: number }): Promise<boolean>;
  /** True when an entry was deleted. */
  delete(namespace: string, key: string): Promise<boolean>;
  /** Live entries of `namespace`, in key order; only those whose key starts with `prefix` when given. */
  list(namespace: string, prefix?: string): Promise<StateEntry[]>;
}

/**
 * Failed-login counters per source in a fixed window (a source may get up to twice the
 * limit across a window boundary; counted per store, so every replica sees the same count).
 */
export interface FailureCounters {
  /** Count one failure; resolves to the failures in the current window, this one included. */
  hit(source: string, windowMs: number): Promise<number>;
  count(source: string, windowMs: number): Promise<number>;
  reset(source: string): Promise<void>;
}

export interface StoreHealth {
  readonly type: 'file' | 'postgres';
  /** The store answers (PostgreSQL: the change listener is connected). */
  readonly connected: boolean;
  /** When this replica last confirmed its view is complete (epoch ms). */
  readonly confirmedAt: number;
  /** Now minus confirmedAt: how stale this replica's view may be. */
  readonly viewAgeMs: number;
  /** The last revision delivered to the listener. */
  readonly revision: number;
  /** The newest revision this replica has heard of (NOTIFY payload or a catch-up). */
  readonly headRevision: number;
  /** The last failure talking to the store, without credentials. */
  readonly lastError: string | undefined;
}

export interface OpenOptions {
  /** Receives every change after the snapshot, in revision order, own changes included. */
  readonly onChange?: ChangeListener;
}

export interface SharedStore {
  readonly type: 'file' | 'postgres';
  /** This replica's name, recorded as the origin of its changes. */
  readonly replicaId: string;
  /** Migrate (PostgreSQL), load the snapshot and start the change feed. Call once. */
  open(options?: OpenOptions): Promise<StoreSnapshot>;

  getGrant(id: string): Promise<StoredGrant | undefined>;
  /** Persist a new grant; resolves with its revision once durable. Rejects if the id exists. */
  createGrant(record: StoredGrant): Promise<number>;
  /** Compare-and-set: apply the transition if the grant's current state allows it. */
  transition(id: string, transition: GrantTransition): Promise<TransitionOutcome>;
  /**
   * Expire every active or pending grant whose deadline is at or before `now`. Resolves to
   * the grants this caller won (another replica sweeping at the same time wins the others).
   */
  sweepExpired(now: number, limit?: number): Promise<StoredGrant[]>;

  /**
   * A value created once for all replicas (the local issuer's signing key): the first
   * caller's `create()` result is stored, every caller gets the stored value.
   */
  sharedValue(name: string, create: () => Promise<string>): Promise<string>;
  readonly state: PluginStateStore;
  readonly failures: FailureCounters;

  health(): StoreHealth;
  close(): Promise<void>;
}
