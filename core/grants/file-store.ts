/**
 * Grants persisted as an append-only JSONL log in dataDir: each change appends the grant's
 * whole new state and fsyncs. On load the log is replayed and compacted (ended grants older
 * than a day are dropped), so the file stays small without a database.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GrantStore } from './store.ts';
import type { GrantRecord } from './record.ts';

const KEEP_ENDED_MS = 86_400_000;

export class FileGrantStore implements GrantStore {
  private fd: number | undefined;
  private readonly path: string;

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
    this.fd = openSync(this.path, 'a', 0o600);
    return kept;
  }

  async put(record: GrantRecord): Promise<void> {
    if (this.fd === undefined) throw new Error('grant store not loaded');
    writeSync(this.fd, JSON.stringify(record) + '\n');
    fsyncSync(this.fd);
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
