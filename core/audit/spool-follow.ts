/** A loop that hands each new run of spool records to a handler, polling when idle. */
import type { Logger } from 'pino';
import type { AuditRecord } from '../plugin.ts';
import { SpoolTail, type TailRead } from './spool-tail.ts';

export interface Follower {
  /** Read again now instead of at the next poll. */
  kick(): void;
  stop(): Promise<void>;
}

export function followSpool(opts: {
  dir: string;
  nextSeq: number;
  batch: number;
  intervalMs: number;
  onRecords: (records: AuditRecord[], missed: TailRead['missed']) => Promise<void>;
  /** Each time a read finds nothing new: the follower has caught up with the spool. */
  onCaughtUp?: () => void;
  log: Logger;
}): Follower {
  const tail = new SpoolTail(opts.dir, opts.nextSeq);
  const abort = new AbortController();
  let wake: (() => void) | undefined;
  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = undefined;
        abort.signal.removeEventListener('abort', done);
        resolve();
      }
      wake = done;
      abort.signal.addEventListener('abort', done, { once: true });
    });
  const loop = (async () => {
    while (!abort.signal.aborted) {
      let read: TailRead;
      try {
        read = await tail.read(opts.batch);
      } catch (e) {
        opts.log.warn({ err: e }, 'audit spool read failed; retrying');
        await idle(opts.intervalMs * 4);
        continue;
      }
      if (read.records.length === 0 && !read.missed) {
        opts.onCaughtUp?.();
        await idle(opts.intervalMs);
        continue;
      }
      await opts.onRecords(read.records, read.missed);
    }
  })();
  return {
    kick: () => wake?.(),
    stop: async () => {
      abort.abort();
      await loop;
    },
  };
}
