/**
 * Cancel keys. Each client session gets airlock's own (pid, key) in BackendKeyData, never
 * the upstream's; a CancelRequest with a matching pair is forwarded with the upstream's
 * pair. Keys are compared in constant time, and an unknown pid and a wrong key look alike.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

interface Entry {
  key: Buffer;
  cancel: () => void;
}

export class CancelRegistry {
  private readonly byPid = new Map<number, Entry>();

  /** Issue a fresh (pid, key) for a session; `cancel` forwards to its upstream. */
  issue(cancel: () => void): { pid: number; key: Buffer; release: () => void } {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff);
    while (this.byPid.has(pid));
    const key = randomBytes(4);
    this.byPid.set(pid, { key, cancel });
    return { pid, key, release: () => this.byPid.delete(pid) };
  }

  /** True when a session matched (and its cancel was started). */
  cancel(pid: number, key: Buffer): boolean {
    const entry = this.byPid.get(pid);
    const expected = entry?.key ?? DECOY;
    const ok = key.length === expected.length && timingSafeEqual(key, expected) && entry !== undefined;
    if (ok) entry.cancel();
    return ok;
  }

  get size(): number {
    return this.byPid.size;
  }
}

const DECOY = randomBytes(4);
