/**
 * The shared-store interface for one process: grants in the existing append-only log
 * (FileGrantStore), plugin state in state.jsonl, shared values as files under
 * `<dataDir>/store/`, counters in memory. A transition checks and changes the in-memory
 * state without yielding to the event loop, so it is as atomic as the PostgreSQL one; the
 * change feed delivers each change once it is durable, in revision order.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileGrantStore } from '../../grants/file-store.ts';
import { MemoryFailureCounters } from '../memory-counters.ts';
import { applyTransition, isDue } from '../transitions.ts';
import type {
  ChangeListener, GrantTransition, JsonValue, OpenOptions, PluginStateStore, SharedStore, StateEntry, StoreChange, StoreHealth,
  StoreSnapshot, StoredGrant, TransitionOutcome,
} from '../types.ts';
import { StateLog } from './state-log.ts';
import { assertSharedName, assertStateKey } from '../names.ts';

export class FileSharedStore implements SharedStore {
  readonly type = 'file';
  readonly failures = new MemoryFailureCounters();
  readonly state: PluginStateStore;
  private readonly grants = new Map<string, StoredGrant>();
  private readonly log: FileGrantStore;
  private readonly stateLog: StateLog;
  private revision = 0;
  private delivered = 0;
  private listener: ChangeListener | undefined;
  /** Deliveries wait for durability, one after the other, so the feed stays in order. */
  private deliveries: Promise<void> = Promise.resolve();
  private readonly creatingShared = new Map<string, Promise<string>>();
  private opened = false;

  constructor(
    private readonly dataDir: string,
    readonly replicaId = 'local',
  ) {
    this.log = new FileGrantStore(dataDir);
    this.stateLog = new StateLog(dataDir);
    this.state = this.pluginState();
  }

  async open(options: OpenOptions = {}): Promise<StoreSnapshot> {
    if (this.opened) throw new Error('store already opened');
    this.opened = true;
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    for (const g of await this.log.load()) this.grants.set(g.id, g);
    this.stateLog.load(Date.now());
    this.listener = options.onChange;
    return { grants: [...this.grants.values()].map(clone), revision: 0 };
  }

  async getGrant(id: string): Promise<StoredGrant | undefined> {
    const g = this.grants.get(id);
    return g && clone(g);
  }

  async createGrant(record: StoredGrant): Promise<number> {
    if (this.grants.has(record.id)) throw new Error(`grant ${record.id} already exists`);
    const stored = clone(record);
    this.grants.set(stored.id, stored);
    const revision = ++this.revision;
    await this.persist([stored], [{ kind: 'grant', revision, origin: this.replicaId, change: 'created', grant: clone(stored) }]);
    return revision;
  }

  async transition(id: string, t: GrantTransition): Promise<TransitionOutcome> {
    const current = this.grants.get(id);
    if (!current) return { won: false, record: undefined, reason: 'unknown' };
    const next = applyTransition(current, t);
    if (!next) return { won: false, record: clone(current), reason: 'state' };
    this.grants.set(id, next);
    const revision = ++this.revision;
    await this.persist([next], [{ kind: 'grant', revision, origin: this.replicaId, change: t.kind, grant: clone(next) }]);
    return { won: true, record: clone(next), previous: clone(current), revision };
  }

  async sweepExpired(now: number, limit = 500): Promise<StoredGrant[]> {
    const won: StoredGrant[] = [];
    const changes: StoreChange[] = [];
    for (const g of this.grants.values()) {
      if (won.length >= limit) break;
      if (!isDue(g, now)) continue;
      const next = applyTransition(g, { kind: 'expire', at: now })!;
      this.grants.set(g.id, next);
      won.push(next);
      changes.push({ kind: 'grant', revision: ++this.revision, origin: this.replicaId, change: 'expire', grant: clone(next) });
    }
    if (won.length > 0) await this.persist(won, changes);
    return won.map(clone);
  }

  async sharedValue(name: string, create: () => Promise<string>): Promise<string> {
    assertSharedName(name);
    const file = join(this.dataDir, 'store', name);
    if (existsSync(file)) return readFileSync(file, 'utf8');
    let pending = this.creatingShared.get(name);
    if (!pending) {
      pending = (async () => {
        const value = await create();
        mkdirSync(join(this.dataDir, 'store'), { recursive: true, mode: 0o700 });
        // 'wx': never replace a value another caller wrote first.
        if (!existsSync(file)) writeFileSync(file, value, { mode: 0o600, flag: 'wx' });
        return readFileSync(file, 'utf8');
      })().finally(() => this.creatingShared.delete(name));
      this.creatingShared.set(name, pending);
    }
    return await pending;
  }

  health(): StoreHealth {
    const now = Date.now();
    return { type: 'file', connected: true, confirmedAt: now, viewAgeMs: 0, revision: this.delivered, headRevision: this.revision, lastError: undefined };
  }

  async close(): Promise<void> {
    await this.deliveries;
    await this.stateLog.close();
    await this.log.close();
  }

  private persist(records: StoredGrant[], changes: StoreChange[]): Promise<void> {
    const durable = Promise.all(records.map((r) => this.log.put(r))).then(() => undefined);
    this.announce(durable, changes);
    return durable;
  }

  private announce(durable: Promise<void>, changes: StoreChange[]): void {
    this.deliveries = this.deliveries
      .then(() => durable)
      .catch(() => {})
      .then(() => {
        for (const c of changes) {
          this.delivered = c.revision;
          try {
            this.listener?.(c);
          } catch {
            // A listener's failure is its own; the feed goes on.
          }
        }
      });
  }

  private pluginState(): PluginStateStore {
    const write = (ns: string, key: string, value: JsonValue | null, expiresAt: number | undefined): Promise<void> => {
      const durable = this.stateLog.set(ns, key, value, expiresAt);
      this.announce(durable, [{ kind: 'state', revision: ++this.revision, origin: this.replicaId, namespace: ns, key, value }]);
      return durable;
    };
    return {
      get: async (ns, key) => {
        assertStateKey(ns, key);
        return this.stateLog.get(ns, key, Date.now())?.value;
      },
      put: async (ns, key, value, options) => {
        assertStateKey(ns, key);
        await write(ns, key, value, options?.expiresAt);
      },
      putIfAbsent: async (ns, key, value, options) => {
        assertStateKey(ns, key);
        if (this.stateLog.get(ns, key, Date.now())) return false;
        await write(ns, key, value, options?.expiresAt);
        return true;
      },
      delete: async (ns, key) => {
        assertStateKey(ns, key);
        if (!this.stateLog.get(ns, key, Date.now())) return false;
        await write(ns, key, null, undefined);
        return true;
      },
      list: async (ns, prefix): Promise<StateEntry[]> => {
        assertStateKey(ns, '-');
        return this.stateLog.list(ns, Date.now(), prefix);
      },
    };
  }
}

function clone(g: StoredGrant): StoredGrant {
  return structuredClone(g);
}
