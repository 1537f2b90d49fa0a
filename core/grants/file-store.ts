/**
 * Grants persisted as an append-only JSONL log in dataDir: each change appends the grant's
 * whole new state. Writes are group-committed off the event loop (one write + fdatasync for
 * every change waiting at that moment), so issuing grants never stalls live sessions. On
 * load the log is replayed and compacted (ended grants older than a day are dropped).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { GrantStore } from './store.ts';
import type { GrantRecord } from './record.ts';

const KEEP_ENDED_MS = 86_400_000;

export class FileGrantStore implements GrantStore {
  private file: FileHandle | undefined;
  private readonly path: string;
  private pending: Array<{ line: string; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing: Promise<void> | undefined;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'grants.jsonl');
  }

  async load(): Promise<GrantRecord[]> {
    const latest = new Map<string, GrantRecord>();
    if (existsSync(this.path)) {
      for (const line of readFileSync(this.path, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const rec = JSON.parse(line) as GrantRecord;
          latest.set(rec.id, rec);
        } catch {
          // A torn last line after a crash: the grant it described was never acknowledged.
        }
      }
    }
    const now = Date.now();
    const kept = [...latest.values()].filter((g) => {
      if (g.status === 'active' || g.status === 'pending') return true;
      const endedAt = Date.parse(g.revokedAt ?? g.expiresAt ?? g.pendingUntil ?? g.createdAt);
      return now - endedAt < KEEP_ENDED_MS;
    });
    const tmp = `${this.path}.compact`;
    writeFileSync(tmp, kept.map((g) => JSON.stringify(g) + '\n').join(''), { mode: 0o600 });
    renameSync(tmp, this.path);
    this.file = await open(this.path, 'a', 0o600);
    return kept;
  }

  put(record: GrantRecord): Promise<void> {
    if (!this.file) return Promise.reject(new Error('grant store not loaded'));
    return new Promise((resolve, reject) => {
      this.pending.push({ line: JSON.stringify(record) + '\n', resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.file!.write(batch.map((p) => p.line).join(''));
        await this.file!.datasync();
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    this.flushing = undefined;
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.file?.close();
    this.file = undefined;
  }
}
