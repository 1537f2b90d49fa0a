/**
 * One target's delivery queue. The queue IS the audit spool: the notifier follows it from
 * its own persisted cursor (like a sink runner, but without holding back segment
 * deletion), picks the records of the configured event types, and sends each one, in
 * order, retrying with jittered back-off. Nothing here is awaited by a grant: a slow or
 * dead receiver only delays later notifications.
 *
 * Exactly once per event id: the id is `<gatewayId>-<seq>`, the same on every retry and
 * after a restart; the cursor is saved after every delivered event, so a receiver sees an
 * id twice only if the gateway dies between its 2xx and that write (receivers dedupe).
 */
import type { Logger } from 'pino';
import type { AuditRecord } from '../plugin.ts';
import type { CursorStore } from '../audit/cursors.ts';
import { followSpool, type Follower } from '../audit/spool-follow.ts';
import { buildPayload, grantIdOf, type GrantFacts } from './payload.ts';
import type { NotifyTarget } from './targets.ts';

export interface NotifierOptions {
  target: NotifyTarget;
  spoolDir: string;
  cursors: CursorStore;
  /** Where to start when the target has no cursor yet: after the current head. */
  headSeq: () => number;
  gatewayId: string;
  grant: (id: string) => GrantFacts | undefined;
  consoleBase: () => string;
  log: Logger;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** After this long failing, an event is given up (counted as dropped) so later ones flow. */
  giveUpMs?: number;
  pollMs?: number;
}

export class Notifier {
  sent = 0;
  failed = 0;
  dropped = 0;
  private follower: Follower | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly o: NotifierOptions) {}

  get id(): string {
    return this.o.target.id;
  }

  async start(): Promise<void> {
    const saved = await this.o.cursors.read(this.o.target.cursorId).catch(() => undefined);
    const cursor = saved ?? this.o.headSeq();
    if (saved === undefined) await this.o.cursors.write(this.o.target.cursorId, cursor);
    this.follower = followSpool({
      dir: this.o.spoolDir,
      nextSeq: cursor + 1,
      batch: 500,
      intervalMs: this.o.pollMs ?? 250,
      log: this.o.log,
      onRecords: async (records, missed) => {
        if (missed) this.o.log.error({ target: this.id, missed }, 'notify: records were deleted from the spool before they were notified');
        await this.handle(records);
      },
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.follower?.stop();
  }

  private async handle(records: AuditRecord[]): Promise<void> {
    let last: number | undefined;
    for (const record of records) {
      if (this.abort.signal.aborted) break;
      if (this.o.target.events.has(record.type)) {
        const delivered = await this.deliver(record);
        if (!delivered) return; // stopping: the cursor stays before this record
        await this.saveCursor(record.seq);
        last = undefined;
        continue;
      }
      last = record.seq;
    }
    if (last !== undefined) await this.saveCursor(last);
  }

  /** True once sent or given up; false only when stopping. */
  private async deliver(record: AuditRecord): Promise<boolean> {
    const id = grantIdOf(record);
    const payload = buildPayload(record, id ? this.o.grant(id) : undefined, this.o.consoleBase());
    const eventId = `${this.o.gatewayId}-${record.seq}`;
    const firstTry = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.o.target.send(payload, eventId);
        this.sent++;
        return true;
      } catch (e) {
        if (this.abort.signal.aborted) return false;
        this.failed++;
        if (Date.now() - firstTry > (this.o.giveUpMs ?? 3_600_000)) {
          this.dropped++;
          this.o.log.error({ target: this.id, eventId, event: record.type, err: e }, 'notify: giving up on an event');
          return true;
        }
        const delay = this.retryDelay(attempt);
        this.o.log.warn({ target: this.id, eventId, attempt, retryInMs: Math.round(delay), err: (e as Error).message }, 'notify: delivery failed');
        await sleep(delay, this.abort.signal);
        if (this.abort.signal.aborted) return false;
      }
    }
  }

  private retryDelay(attempt: number): number {
    const d = Math.min(this.o.retryMaxMs ?? 10_000, (this.o.retryBaseMs ?? 500) * 2 ** Math.min(attempt - 1, 20));
    return d / 2 + Math.random() * (d / 2);
  }

  private async saveCursor(seq: number): Promise<void> {
    try {
      await this.o.cursors.write(this.o.target.cursorId, seq);
    } catch (e) {
      this.o.log.warn({ target: this.id, err: e }, 'notify: cursor could not be saved (a restart may repeat an event id)');
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
