/**
 * Cancel keys. Each client session gets the upstream server's real process id (so that
 * `processID`, `pg_backend_pid()` and a notification's process id agree, and
 * `pg_cancel_backend(pid)` works) with a secret key of airlock's own, never the upstream's.
 * A CancelRequest is matched on the (pid, key) pair (two upstream servers may reuse a pid)
 * and forwarded with the upstream's own key. Keys are compared in constant time, and an
 * unknown pid and a wrong key look alike.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

interface Entry {
  key: Buffer;
  cancel: () => void;
}

export class CancelRegistry {
  private readonly byPid = new Map<number, Entry[]>();

  /** Issue a fresh key for a session whose upstream process is `pid`; `cancel` forwards to it. */
  issue(pid: number, cancel: () => void): { pid: number; key: Buffer; release: () => void } {
    const entries = this.byPid.get(pid) ?? [];
    let key: Buffer;
    do key = randomBytes(4);
    while (entries.some((e) => e.key.equals(key)));
    const entry: Entry = { key, cancel };
    entries.push(entry);
    this.byPid.set(pid, entries);
    const release = () => {
      const list = this.byPid.get(pid);
      if (!list) return;
      const rest = list.filter((e) => e !== entry);
      if (rest.length === 0) this.byPid.delete(pid);
      else this.byPid.set(pid, rest);
    };
    return { pid, key, release };
  }

  /** True when a session matched (and its cancel was started). */
  cancel(pid: number, key: Buffer): boolean {
    const entries = this.byPid.get(pid) ?? [];
    let match: Entry | undefined;
    // Compare against every candidate (and a decoy when there is none) so timing says nothing.
    for (const e of entries.length > 0 ? entries : [{ key: DECOY, cancel: () => {} }]) {
      const ok = key.length === e.key.length && timingSafeEqual(key, e.key);
      if (ok && entries.includes(e)) match = e;
    }
    match?.cancel();
    return match !== undefined;
  }

  get size(): number {
    let n = 0;
    for (const list of this.byPid.values()) n += list.length;
    return n;
  }
}

const DECOY = randomBytes(4);
