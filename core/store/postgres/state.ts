/**
 * Plugin state and failure counters on PostgreSQL. State writes go through the change feed
 * (other replicas can refresh a cache); counters do not (they are read where they are hit).
 * Expiry times are the caller's clock (epoch ms), as in the file store.
 */
import type { Sql, TransactionSql } from 'postgres';
import { assertStateKey } from '../names.ts';
import type { FailureCounters, JsonValue, PluginStateStore, StateEntry } from '../types.ts';
import type { ChangeEntry } from './store.ts';

type Guard = <T>(fn: () => Promise<T>) => Promise<T>;
type Append = (tx: TransactionSql, entries: ChangeEntry[]) => Promise<number[]>;

/** The change key of a state entry: `namespace/key` (a namespace never holds a slash). */
export function stateChangeKey(namespace: string, key: string): string {
  return `${namespace}/${key}`;
}

export class PostgresPluginState implements PluginStateStore {
  constructor(
    private readonly pool: () => Sql,
    private readonly schema: string,
    private readonly guard: Guard,
    private readonly append: Append,
  ) {}

  async get(namespace: string, key: string): Promise<JsonValue | undefined> {
    check(namespace, key);
    return await this.guard(async () => {
      const [row] = await this.pool()<{ value: JsonValue }[]>`
        select value from ${this.pool()(this.schema)}.state
        where namespace = ${namespace} and key = ${key} and (expires_at is null or expires_at > ${Date.now()}::bigint)`;
      return row?.value;
    });
  }

  async put(namespace: string, key: string, value: JsonValue, options?: { expiresAt?: number }): Promise<void> {
    check(namespace, key);
    await this.guard(() =>
      this.pool().begin(async (tx) => {
        await tx`insert into ${tx(this.schema)}.state (namespace, key, value, expires_at)
                 values (${namespace}, ${key}, ${tx.json(value)}, ${options?.expiresAt ?? null}::bigint)
                 on conflict (namespace, key) do update set value = excluded.value, expires_at = excluded.expires_at`;
        await this.append(tx, [{ kind: 'state', key: stateChangeKey(namespace, key), change: 'put', payload: value }]);
      }),
    );
  }

  async putIfAbsent(namespace: string, key: string, value: JsonValue, options?: { expiresAt?: number }): Promise<boolean> {
    check(namespace, key);
    return await this.guard(() =>
      this.pool().begin(async (tx) => {
        // Replaces only an expired entry; a live one keeps its first writer.
        const written = await tx`insert into ${tx(this.schema)}.state (namespace, key, value, expires_at)
                 values (${namespace}, ${key}, ${tx.json(value)}, ${options?.expiresAt ?? null}::bigint)
                 on conflict (namespace, key) do update set value = excluded.value, expires_at = excluded.expires_at
                 where state.expires_at is not null and state.expires_at <= ${Date.now()}::bigint
                 returning 1 as one`;
        if (written.length === 0) return false;
        await this.append(tx, [{ kind: 'state', key: stateChangeKey(namespace, key), change: 'put', payload: value }]);
        return true;
      }),
    );
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    check(namespace, key);
    return await this.guard(() =>
      this.pool().begin(async (tx) => {
        const gone = await tx`delete from ${tx(this.schema)}.state where namespace = ${namespace} and key = ${key}
                 returning (expires_at is null or expires_at > ${Date.now()}::bigint) as live`;
        if (gone.length === 0) return false;
        await this.append(tx, [{ kind: 'state', key: stateChangeKey(namespace, key), change: 'delete', payload: null }]);
        return gone[0]!.live === true;
      }),
    );
  }

  async list(namespace: string, prefix = ''): Promise<StateEntry[]> {
    check(namespace, '-');
    return await this.guard(async () => {
      const rows = await this.pool()<{ key: string; value: JsonValue; expires_at: string | null }[]>`
        select key, value, expires_at from ${this.pool()(this.schema)}.state
        where namespace = ${namespace} and starts_with(key, ${prefix}) and (expires_at is null or expires_at > ${Date.now()}::bigint) order by key`;
      return rows.map((r) => ({ key: r.key, value: r.value, expiresAt: r.expires_at === null ? undefined : Number(r.expires_at) }));
    });
  }
}

export class PostgresFailureCounters implements FailureCounters {
  constructor(
    private readonly pool: () => Sql,
    private readonly schema: string,
    private readonly guard: Guard,
  ) {}

  async hit(source: string, windowMs: number): Promise<number> {
    const now = Date.now();
    return await this.guard(async () => {
      // One statement: concurrent hits from several replicas each count once.
      const [row] = await this.pool()<{ count: number }[]>`
        insert into ${this.pool()(this.schema)}.failures as f (source, count, window_start) values (${source}, 1, ${now}::bigint)
        on conflict (source) do update set
          count = case when f.window_start <= ${now - windowMs}::bigint then 1 else f.count + 1 end,
          window_start = case when f.window_start <= ${now - windowMs}::bigint then ${now}::bigint else f.window_start end
        returning count`;
      return row!.count;
    });
  }

  async count(source: string, windowMs: number): Promise<number> {
    return await this.guard(async () => {
      const [row] = await this.pool()<{ count: number }[]>`
        select count from ${this.pool()(this.schema)}.failures where source = ${source} and window_start > ${Date.now() - windowMs}::bigint`;
      return row?.count ?? 0;
    });
  }

  async reset(source: string): Promise<void> {
    await this.guard(async () => {
      await this.pool()`delete from ${this.pool()(this.schema)}.failures where source = ${source}`;
    });
  }
}

function check(namespace: string, key: string): void {
  assertStateKey(namespace, key);
  // PostgreSQL text cannot hold NUL.
  if (key.includes('\u0000')) throw new Error('state keys cannot contain NUL');
}
