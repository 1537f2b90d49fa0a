/**
 * The change feed of one replica. Every write transaction appends rows to `changes` with
 * the next revisions and NOTIFYs the last one at commit. This replica LISTENs on a
 * dedicated connection only as a wake-up: whatever wakes it (a notification, a
 * (re)connect of the listener, the slow poll), it reads every change after its cursor in
 * revision order and delivers each once. A lost notification therefore delays a change
 * until the next poll at worst; a pruned history (revisions gapless, so a hole shows)
 * becomes a `reset` with the whole current view.
 */
import postgres, { type Sql } from 'postgres';
import type { ChangeListener, JsonValue, StoreChange, StoreSnapshot, StoredGrant } from '../types.ts';
import { describeFailure } from './connection-errors.ts';

const PAGE = 500;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export interface FeedOptions {
  readonly url: string;
  /** The store's current pool (it may replace it). */
  readonly sql: () => Sql;
  readonly schema: string;
  readonly channel: string;
  readonly replicaId: string;
  readonly pollMs: number;
  readonly listener: ChangeListener | undefined;
  readonly snapshot: () => Promise<StoreSnapshot>;
  readonly onError: (message: string) => void;
  /** A catch-up pass not done by then is abandoned and `onStuck` called. */
  readonly passTimeoutMs: number;
  readonly onStuck: () => void;
}

interface ChangeRow {
  revision: string;
  kind: string;
  key: string;
  origin: string;
  change: string;
  payload: StoredGrant | JsonValue | null;
}

/**
 * postgres.js hands NotificationResponse messages to this option (its own listen() is
 * built on it) but does not declare it. We use it directly so this feed owns the LISTEN
 * connection's life: listen() re-listens after a drop but gives up silently if that one
 * attempt fails, and never says the connection was lost. The feed tests cover it.
 */
type ListenConnectionOptions = postgres.Options<Record<string, postgres.PostgresType>> & {
  onnotify: (channel: string, payload: string) => void;
};

export class ChangeFeed {
  private cursor: number;
  private head: number;
  private confirmedAt: number;
  private listening = false;
  private lastPollOk = true;
  private closed = false;
  private catching: Promise<void> | undefined;
  /** Number of the current catch-up pass; a pass that is no longer current delivers nothing. */
  private pass = 0;
  private again = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = RECONNECT_MIN_MS;
  private listenSql: Sql | undefined;

  constructor(
    private readonly o: FeedOptions,
    start: { revision: number; confirmedAt: number },
  ) {
    this.cursor = start.revision;
    this.head = start.revision;
    this.confirmedAt = start.confirmedAt;
  }

  start(): void {
    void this.connectListener();
    this.pollTimer = setInterval(() => void this.wake(), this.o.pollMs);
    this.pollTimer.unref();
  }

  get revision(): number {
    return this.cursor;
  }

  get headRevision(): number {
    return Math.max(this.head, this.cursor);
  }

  get lastConfirmedAt(): number {
    return this.confirmedAt;
  }

  get connected(): boolean {
    return this.listening && this.lastPollOk;
  }

  /** Read everything after the cursor; concurrent wakes fold into one more pass. */
  wake(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.catching) {
      this.again = true;
      return this.catching;
    }
    this.catching = (async () => {
      try {
        do {
          this.again = false;
          await this.boundedPass();
        } while (this.again && !this.closed);
      } finally {
        this.catching = undefined;
      }
    })();
    return this.catching;
  }

  /**
   * One catch-up pass, abandoned if it hangs: the pass is numbered, and an abandoned one
   * delivers nothing even if its query answers later, so no change is delivered twice.
   */
  private async boundedPass(): Promise<void> {
    const pass = ++this.pass;
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => {
      timer = setTimeout(() => resolve('hung'), this.o.passTimeoutMs);
    });
    const outcome = await Promise.race([this.catchUp(pass), hung]);
    clearTimeout(timer);
    if (outcome === 'hung') {
      this.pass++;
      this.lastPollOk = false;
      this.o.onError(`change feed: no answer within ${this.o.passTimeoutMs} ms`);
      this.o.onStuck();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.reconnectTimer);
    await this.catching?.catch(() => {});
    const l = this.listenSql;
    this.listenSql = undefined;
    await l?.end({ timeout: 0 }).catch(() => {});
  }

  // ---- catch-up ---------------------------------------------------------------------

  private async catchUp(pass: number): Promise<'done'> {
    const startedAt = Date.now();
    const sql = this.o.sql();
    try {
      const s = this.o.schema;
      const [meta] = await sql`select revision from ${sql(s)}.meta`;
      if (pass !== this.pass) return 'done';
      const head = Number(meta!.revision);
      this.head = Math.max(this.head, head);
      while (this.cursor < head && !this.closed) {
        const upTo = Math.min(head, this.cursor + PAGE);
        const rows = await sql<ChangeRow[]>`
          select revision, kind, key, origin, change, payload from ${sql(s)}.changes
          where revision > ${this.cursor} and revision <= ${upTo} order by revision`;
        if (pass !== this.pass) return 'done';
        if (!this.isContiguous(rows, upTo)) {
          await this.reset(pass);
          continue;
        }
        for (const row of rows) this.deliver(toChange(row));
      }
      if (pass !== this.pass) return 'done';
      this.lastPollOk = true;
      // Everything committed before this pass began is now delivered.
      this.confirmedAt = Math.max(this.confirmedAt, startedAt);
    } catch (e) {
      if (pass !== this.pass) return 'done';
      this.lastPollOk = false;
      this.o.onError(describeFailure(e));
    }
    return 'done';
  }

  /** Revisions are gapless: a missing one means the history was pruned behind us. */
  private isContiguous(rows: ChangeRow[], upTo: number): boolean {
    if (rows.length !== upTo - this.cursor) return false;
    return rows.every((r, i) => Number(r.revision) === this.cursor + i + 1);
  }

  private async reset(pass: number): Promise<void> {
    const snap = await this.o.snapshot();
    if (pass !== this.pass || snap.revision < this.cursor) return;
    this.deliver({ kind: 'reset', revision: snap.revision, grants: snap.grants });
  }

  private deliver(change: StoreChange): void {
    this.cursor = change.revision;
    try {
      this.o.listener?.(change);
    } catch (e) {
      // The listener's failure is its own: the feed must go on for the next change.
      this.o.onError(`change listener failed at revision ${change.revision}: ${describeFailure(e)}`);
    }
  }

  // ---- the LISTEN connection ----------------------------------------------------------

  private async connectListener(): Promise<void> {
    if (this.closed) return;
    const options: ListenConnectionOptions = {
      max: 1,
      idle_timeout: 0,
      max_lifetime: 0,
      connect_timeout: 5,
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: `airlock-listen:${this.o.replicaId}` },
      onnotify: (_channel: string, payload: string) => {
        const revision = Number(payload);
        if (Number.isSafeInteger(revision)) this.head = Math.max(this.head, revision);
        void this.wake();
      },
      onclose: () => this.listenerLost(l),
    };
    const l: Sql = postgres(this.o.url, options);
    this.listenSql = l;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Bounded for the same reason as a catch-up pass: a connect can hang during a server start.
      await Promise.race([
        l`listen ${l(this.o.channel)}`,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`LISTEN not confirmed within ${this.o.passTimeoutMs} ms`)), this.o.passTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (this.closed || this.listenSql !== l) return;
      this.listening = true;
      this.reconnectDelay = RECONNECT_MIN_MS;
      // Anything committed while we were not listening is read now.
      await this.wake();
    } catch (e) {
      clearTimeout(timer);
      this.o.onError(`change listener: ${describeFailure(e)}`);
      this.listenerLost(l);
    }
  }

  private listenerLost(l: Sql): void {
    if (this.listenSql !== l) return;
    this.listening = false;
    this.listenSql = undefined;
    void l.end({ timeout: 0 }).catch(() => {});
    if (this.closed) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(RECONNECT_MAX_MS, delay * 2);
    this.reconnectTimer = setTimeout(() => void this.connectListener(), delay);
    this.reconnectTimer.unref();
  }
}

function toChange(row: ChangeRow): StoreChange {
  const revision = Number(row.revision);
  if (row.kind === 'grant') {
    return { kind: 'grant', revision, origin: row.origin, change: row.change as Extract<StoreChange, { kind: 'grant' }>['change'], grant: row.payload as StoredGrant };
  }
  const slash = row.key.indexOf('/');
  return { kind: 'state', revision, origin: row.origin, namespace: row.key.slice(0, slash), key: row.key.slice(slash + 1), value: row.payload as JsonValue | null };
}
