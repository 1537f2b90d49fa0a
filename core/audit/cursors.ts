/**
 * Per-sink delivery cursors: the last seq a sink has stored, in
 * `${dataDir}/spool/cursors/<safe id>.json`, replaced atomically (write tmp + rename) after
 * each delivered batch. A cursor lost to a power failure only means a batch is delivered
 * again, which sinks tolerate (at-least-once), so no fsync is spent on it.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

export class CursorStore {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
  }

  /** A file name that cannot escape the folder or collide for distinct ids. */
  fileFor(id: string): string {
    const readable = id.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
    const digest = createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 12);
    return join(this.dir, `${readable}-${digest}.json`);
  }

  /** The stored cursor, or undefined when absent or unreadable (then the sink starts over). */
  async read(id: string): Promise<number | undefined> {
    let text: string;
    try {
      text = await fsp.readFile(this.fileFor(id), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const parsed = JSON.parse(text) as { id?: unknown; seq?: unknown };
      if (parsed.id === id && typeof parsed.seq === 'number' && Number.isSafeInteger(parsed.seq) && parsed.seq >= 0) {
        return parsed.seq;
      }
    } catch {
      // fall through: treat as absent
    }
    return undefined;
  }

  async write(id: string, seq: number): Promise<void> {
    const file = this.fileFor(id);
    const tmp = file + '.tmp';
    await fsp.writeFile(tmp, JSON.stringify({ id, seq, at: new Date().toISOString() }) + '\n');
    await fsp.rename(tmp, file);
  }
}
