/**
 * Plugin state for the file store: namespaced entries in memory, each change appended to
 * `<dataDir>/state.jsonl` (replayed and compacted on open, expired entries dropped).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonValue, StateEntry } from '../types.ts';

interface LogLine {
  ns: string;
  key: string;
  /** Null: deleted. */
  value: JsonValue | null;
  expiresAt?: number;
}

interface Entry {
  value: JsonValue;
  expiresAt: number | undefined;
}

export class StateLog {
  private readonly path: string;
  private readonly entries = new Map<string, Map<string, Entry>>();
  /** Appends in call order, so the log replays to the state callers saw. */
  private tail: Promise<void> = Promise.resolve();

  constructor(dataDir: string) {
    this.path = join(dataDir, 'state.jsonl');
  }

  load(now: number): void {
    if (existsSync(this.path)) {
      for (const line of readFileSync(this.path, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const l = JSON.parse(line) as LogLine;
          if (l.value === null) this.namespace(l.ns).delete(l.key);
          else this.namespace(l.ns).set(l.key, { value: l.value, expiresAt: l.expiresAt });
        } catch {
          // A torn last line after a crash: that write was never acknowledged.
        }
      }
    }
    const kept: string[] = [];
    for (const [ns, map] of this.entries) {
      for (const [key, e] of map) {
        if (e.expiresAt !== undefined && e.expiresAt <= now) map.delete(key);
        else kept.push(JSON.stringify({ ns, key, value: e.value, ...(e.expiresAt !== undefined ? { expiresAt: e.expiresAt } : {}) } satisfies LogLine) + '\n');
      }
    }
    const tmp = `${this.path}.compact`;
    writeFileSync(tmp, kept.join(''), { mode: 0o600 });
    renameSync(tmp, this.path);
  }

  get(ns: string, key: string, now: number): Entry | undefined {
    const e = this.entries.get(ns)?.get(key);
    return e && (e.expiresAt === undefined || e.expiresAt > now) ? e : undefined;
  }

  list(ns: string, now: number, prefix = ''): StateEntry[] {
    return [...(this.entries.get(ns) ?? new Map<string, Entry>())]
      .filter(([key, e]) => key.startsWith(prefix) && (e.expiresAt === undefined || e.expiresAt > now))
      .map(([key, e]) => ({ key, value: e.value, expiresAt: e.expiresAt }));
  }

  /** Change memory now (so a read right after sees it); resolves once appended. */
  set(ns: string, key: string, value: JsonValue | null, expiresAt: number | undefined): Promise<void> {
    if (value === null) this.namespace(ns).delete(key);
    else this.namespace(ns).set(key, { value, expiresAt });
    const line = JSON.stringify({ ns, key, value, ...(expiresAt !== undefined ? { expiresAt } : {}) } satisfies LogLine) + '\n';
    const write = this.tail.then(() => appendFile(this.path, line, { mode: 0o600 }));
    this.tail = write.catch(() => {});
    return write;
  }

  async close(): Promise<void> {
    await this.tail;
  }

  private namespace(ns: string): Map<string, Entry> {
    let map = this.entries.get(ns);
    if (!map) this.entries.set(ns, (map = new Map()));
    return map;
  }
}
