/**
 * The shared store on PostgreSQL (postgres.js). Every decision two replicas could race on
 * is one transaction holding the grant's row lock: read the current state, apply the pure
 * transition (../transitions.ts), write, append to the change feed. The loser of a race
 * sees the winner's state and is told it lost. Connection failures become
 * AirlockError(STORE_UNAVAILABLE) naming the store (503); nothing is retried behind the caller's back.
 */
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { applyTransition, deadlineOf } from '../transitions.ts';
import { assertSharedName } from '../names.ts';
import type {
  ChangeOrigin, GrantTransition, JsonValue, OpenOptions, SharedStore, StoreHealth, StoreSnapshot, StoredGrant, TransitionOutcome,
} from '../types.ts';
import { ChangeFeed } from './feed.ts';
import { migrate } from './migrations.ts';
import { describeUrl, isConnectionFailure, unavailable } from './connection-errors.ts';
import { PostgresPluginState, PostgresFailureCounters } from './state.ts';
import { pruneStore } from './prune.ts';

export interface PostgresStoreOptions {
  readonly url: string;
  /** Schema holding airlock's tables (default `airlock`). */
  readonly schema?: string;
  readonly replicaId: string;
  /** Slow poll of the change table, the fallback for a lost notification (default 2 s). */
  readonly pollMs?: number;
  /** Pool size of the main connection pool (default 4). */
  readonly maxConnections?: number;
  /** Housekeeping interval (prune old changes and ended grants; default 10 min). */
  readonly pruneEveryMs?: number;
  /**
   * An operation not answered by then fails with STORE_UNAVAILABLE and the pool is
   * replaced (default 10 s): postgres.js 3.4.9 can leave a query waiting forever when the
   * server closes connections during its own start-up (porsager/postgres#1193).
   */
  readonly operationTimeoutMs?: number;
  readonly onError?: (message: string) => void;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;
const SHARED_LOCK = 0x61697273; // 'airs'

/** One pending change row in a write transaction. */
export interface ChangeEntry {
  kind: 'grant' | 'state';
  key: string;
  change: ChangeOrigin | 'put' | 'delete';
  payload: JsonValue | StoredGrant | null;
}

export class PostgresSharedStore implements SharedStore {
  readonly type = 'postgres';
  readonly replicaId: string;
  readonly state: PostgresPluginState;
  readonly failures: PostgresFailureCounters;
  private pool: Sql;
  private readonly schema: string;
  private readonly where: string;
  private feed: ChangeFeed | undefined;
  private lastError: string | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: PostgresStoreOptions) {
    this.schema = o.schema ?? 'airlock';
    if (!SCHEMA_NAME.test(this.schema)) throw new Error(`store schema "${this.schema}" must be lower-case letters, digits and _ (max 48)`);
    this.replicaId = o.replicaId;
    this.where = describeUrl(o.url);
    this.pool = this.newPool();
    this.state = new PostgresPluginState(() => this.sql, this.schema, (fn) => this.guard(fn), (tx, entries) => this.appendChanges(tx, entries));
    this.failures = new PostgresFailureCounters(() => this.sql, this.schema, (fn) => this.guard(fn));
  }

  /** The current pool (replaced when one stops answering). */
  private get sql(): Sql {
    return this.pool;
  }

  private newPool(): Sql {
    return postgres(this.o.url, {
      max: this.o.maxConnections ?? 4,
      connect_timeout: 5,
      idle_timeout: 60,
      onnotice: () => {},
      connection: { application_name: `airlock-store:${this.o.replicaId}` },
    });
  }

  /**
   * Replace a pool that stopped answering: new work gets fresh connections at once, work
   * still running on the old pool gets one more operation bound to finish before the old
   * pool is destroyed.
   */
  private replacePool(): void {
    const old = this.pool;
    this.pool = this.newPool();
    void old.end({ timeout: Math.ceil(this.timeoutMs / 1000) }).catch(() => {});
  }

  /** The channel NOTIFY wakes replicas on (one per schema, so two deployments never mix). */
  get channel(): string {
    return `${this.schema}_changes`;
  }

  async open(options: OpenOptions = {}): Promise<StoreSnapshot> {
    if (this.feed) throw new Error('store already opened');
    const confirmedAt = Date.now();
    // Migrations may wait on another replica's lock: a longer bound than other operations.
    const snap = await this.guard(async () => {
      await migrate(this.sql, this.schema);
      return await this.snapshot();
    }, 120_000);
    this.feed = new ChangeFeed(
      {
        url: this.o.url, sql: () => this.sql, schema: this.schema, channel: this.channel, replicaId: this.replicaId,
        pollMs: this.o.pollMs ?? 2_000, listener: options.onChange, snapshot: () => this.snapshot(), onError: (m) => this.failed(m),
        passTimeoutMs: this.timeoutMs, onStuck: () => this.replacePool(),
      },
      { revision: snap.revision, confirmedAt },
    );
    this.feed.start();
    this.pruneTimer = setInterval(() => void this.prune(), this.o.pruneEveryMs ?? 600_000);
    this.pruneTimer.unref();
    return snap;
  }

  async getGrant(id: string): Promise<StoredGrant | undefined> {
    return await this.guard(async () => {
      const [row] = await this.sql<{ record: StoredGrant }[]>`select record from ${this.sql(this.schema)}.grants where id = ${id}`;
      return row?.record;
    });
  }

  async createGrant(record: StoredGrant): Promise<number> {
    return await this.guard(() =>
      this.sql.begin(async (tx) => {
        await tx`insert into ${tx(this.schema)}.grants (id, status, deadline, record)
                 values (${record.id}, ${record.status}, ${deadlineOf(record)}, ${tx.json(toJson(record))})`;
        const [revision] = await this.appendChanges(tx, [{ kind: 'grant', key: record.id, change: 'created', payload: record }]);
        return revision!;
      }),
    );
  }

  async transition(id: string, t: GrantTransition): Promise<TransitionOutcome> {
    return await this.guard(() =>
      this.sql.begin(async (tx): Promise<TransitionOutcome> => {
        const [row] = await tx<{ record: StoredGrant }[]>`select record from ${tx(this.schema)}.grants where id = ${id} for update`;
        if (!row) return { won: false, record: undefined, reason: 'unknown' };
        const next = applyTransition(row.record, t);
        if (!next) return { won: false, record: row.record, reason: 'state' };
        await tx`update ${tx(this.schema)}.grants set status = ${next.status}, deadline = ${deadlineOf(next)}, record = ${tx.json(toJson(next))}, updated_at = now()
                 where id = ${id}`;
        const [revision] = await this.appendChanges(tx, [{ kind: 'grant', key: id, change: t.kind, payload: next }]);
        return { won: true, record: next, previous: row.record, revision: revision! };
      }),
    );
  }

  async sweepExpired(now: number, limit = 500): Promise<StoredGrant[]> {
    return await this.guard(() =>
      this.sql.begin(async (tx) => {
        // SKIP LOCKED: rows another replica is sweeping (or transitioning) are its to decide.
        const due = await tx<{ record: StoredGrant }[]>`
          select record from ${tx(this.schema)}.grants
          where status in ('active', 'pending') and deadline <= ${new Date(now)}
          order by deadline limit ${limit} for update skip locked`;
        const won = due.map((r) => applyTransition(r.record, { kind: 'expire', at: now })).filter((g): g is StoredGrant => g !== undefined);
        if (won.length === 0) return [];
        await tx`update ${tx(this.schema)}.grants g set status = 'expired', deadline = null, record = v.record, updated_at = now()
                 from jsonb_to_recordset(${JSON.stringify(won.map((g) => ({ id: g.id, record: g })))}::text::jsonb) as v(id text, record jsonb)
                 where g.id = v.id`;
        await this.appendChanges(tx, won.map((g) => ({ kind: 'grant', key: g.id, change: 'expire', payload: g })));
        return won;
      }),
    );
  }

  async sharedValue(name: string, create: () => Promise<string>): Promise<string> {
    assertSharedName(name);
    return await this.guard(() =>
      this.sql.begin(async (tx) => {
        // The first replica creates the value while the others wait on this lock.
        await tx`select pg_advisory_xact_lock(${SHARED_LOCK}::int4, hashtext(${this.schema + '/' + name}))`;
        const [row] = await tx<{ value: string }[]>`select value from ${tx(this.schema)}.shared_values where name = ${name}`;
        if (row) return row.value;
        const value = await create();
        await tx`insert into ${tx(this.schema)}.shared_values (name, value, created_by) values (${name}, ${value}, ${this.replicaId})`;
        return value;
      }),
    );
  }

  health(): StoreHealth {
    const now = Date.now();
    const confirmedAt = this.feed?.lastConfirmedAt ?? 0;
    const connected = this.feed?.connected ?? false;
    return {
      type: 'postgres',
      connected,
      confirmedAt,
      viewAgeMs: confirmedAt === 0 ? Number.POSITIVE_INFINITY : Math.max(0, now - confirmedAt),
      revision: this.feed?.revision ?? 0,
      headRevision: this.feed?.headRevision ?? 0,
      // A failure the store has since recovered from is history, not health.
      lastError: connected ? undefined : this.lastError,
    };
  }

  /** Wake the feed now (tests, and the hub after a local write it wants seen at once). */
  refresh(): Promise<void> {
    return this.feed?.wake() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    await this.feed?.close();
    await this.pool.end({ timeout: 5 });
  }

  // ---- internals ----------------------------------------------------------------------

  /**
   * Take the next revisions for `entries` and write them in the caller's transaction. The
   * counter row stays locked until commit, so revisions commit in order; NOTIFY is sent at
   * commit, carrying the last revision.
   */
  async appendChanges(tx: TransactionSql, entries: ChangeEntry[]): Promise<number[]> {
    const n = entries.length;
    const rows = entries.map((e, i) => ({ ord: i + 1, kind: e.kind, key: e.key, origin: this.replicaId, change: e.change, payload: e.payload }));
    // One statement, so the counter row is held for one round trip before the commit.
    const [out] = await tx<{ last: string }[]>`
      with m as (update ${tx(this.schema)}.meta set revision = revision + ${n}::int returning revision),
      ins as (
        insert into ${tx(this.schema)}.changes (revision, kind, key, origin, change, payload)
        select m.revision - ${n}::int + x.ord, x.kind, x.key, x.origin, x.change, x.payload
        from m, jsonb_to_recordset(${JSON.stringify(rows)}::text::jsonb)
          as x(ord int, kind text, key text, origin text, change text, payload jsonb)
      )
      select m.revision::text as last, pg_notify(${this.channel}, m.revision::text) from m`;
    const last = Number(out!.last);
    return Array.from({ length: n }, (_, i) => last - n + 1 + i);
  }

  private async snapshot(): Promise<StoreSnapshot> {
    return await this.sql.begin('isolation level repeatable read', async (tx) => {
      const [meta] = await tx`select revision from ${tx(this.schema)}.meta`;
      const rows = await tx<{ record: StoredGrant }[]>`
        select record from ${tx(this.schema)}.grants
        where status in ('active', 'pending') or updated_at > now() - interval '1 day'`;
      return { grants: rows.map((r) => r.record), revision: Number(meta!.revision) };
    });
  }

  private async prune(): Promise<void> {
    await this.guard(() => pruneStore(this.sql, this.schema, Date.now())).catch(() => {});
  }

  private get timeoutMs(): number {
    return this.o.operationTimeoutMs ?? 10_000;
  }

  private async guard<T>(fn: () => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OperationTimeout(timeoutMs)), timeoutMs);
    });
    try {
      return await Promise.race([fn(), timedOut]);
    } catch (e) {
      if (e instanceof OperationTimeout) this.replacePool();
      else if (!isConnectionFailure(e)) throw e;
      const error = unavailable(this.where, e);
      this.failed(error.message);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private failed(message: string): void {
    this.lastError = message;
    this.o.onError?.(message);
  }
}

class OperationTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/** A grant as a JSON value for postgres.js (a plain object of JSON-safe fields). */
function toJson(g: StoredGrant): JsonValue {
  return JSON.parse(JSON.stringify(g)) as JsonValue;
}
