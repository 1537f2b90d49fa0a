/**
 * Which SSM command ids each grant created, so GetCommandInvocation, ListCommands,
 * ListCommandInvocations and CancelCommand reach only the grant's own commands. Kept in
 * memory and appended to `<dataDir>/ssm-commands.jsonl`, so a gateway restart keeps them for
 * grants that are still alive.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

interface Entry {
  grant: string;
  commandId: string;
  /** Epoch ms after which the entry is useless (the grant has ended). */
  until: number;
}

export class CommandLedger {
  private readonly byGrant = new Map<string, { ids: Set<string>; until: number }>();

  constructor(private readonly file: string | undefined, private readonly now: () => number = Date.now) {
    if (file === undefined || !existsSync(file)) return;
    const live: Entry[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        const e = JSON.parse(line) as Entry;
        if (typeof e.grant === 'string' && typeof e.commandId === 'string' && typeof e.until === 'number' && e.until > this.now()) {
          this.remember(e.grant, e.commandId, e.until, false);
          live.push(e);
        }
      } catch {
        // A torn last line after a crash: skip it.
      }
    }
    // Compact: keep only entries of grants that can still be used.
    writeFileSync(file, live.map((e) => JSON.stringify(e) + '\n').join(''), { mode: 0o600 });
  }

  remember(grant: string, commandId: string, until: number, persist = true): void {
    let entry = this.byGrant.get(grant);
    if (entry === undefined) {
      entry = { ids: new Set(), until };
      this.byGrant.set(grant, entry);
    }
    entry.ids.add(commandId);
    entry.until = Math.max(entry.until, until);
    if (persist && this.file !== undefined) {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      appendFileSync(this.file, JSON.stringify({ grant, commandId, until } satisfies Entry) + '\n', { mode: 0o600 });
    }
  }

  owns(grant: string, commandId: string): boolean {
    return this.byGrant.get(grant)?.ids.has(commandId) ?? false;
  }

  /** Drop grants that have ended. */
  sweep(): void {
    const now = this.now();
    for (const [grant, entry] of this.byGrant) if (entry.until < now) this.byGrant.delete(grant);
  }
}
