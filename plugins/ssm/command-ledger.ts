/**
 * Which SSM command ids each grant created, so GetCommandInvocation, ListCommands,
 * ListCommandInvocations and CancelCommand reach only the grant's own commands. Kept in the
 * plugin's shared state (one entry per command, expiring when its grant ends), so another
 * replica — or this gateway after a restart — knows a command sent here; a local cache
 * answers repeat checks without a store round trip.
 */
import type { PluginState } from '../../core/public.ts';

const PREFIX = 'command/';

function keyOf(grant: string, commandId: string): string {
  return `${PREFIX}${grant}/${commandId}`;
}

export class CommandLedger {
  /** What this process has seen (written or read), by grant. */
  private readonly known = new Map<string, { ids: Set<string>; until: number }>();

  constructor(private readonly state: PluginState, private readonly now: () => number = Date.now) {}

  /** Durable in the shared state when it resolves: another replica can check it at once. */
  async remember(grant: string, commandId: string, until: number): Promise<void> {
    await this.state.put(keyOf(grant, commandId), { until }, { expiresAt: until });
    this.cache(grant, commandId, until);
  }

  async owns(grant: string, commandId: string): Promise<boolean> {
    if (this.known.get(grant)?.ids.has(commandId)) return true;
    const entry = await this.state.get(keyOf(grant, commandId));
    if (entry === undefined) return false;
    this.cache(grant, commandId, untilOf(entry, this.now()));
    return true;
  }

  /** Every command of `grant` (for filtering listings that span the account). */
  async commandsOf(grant: string): Promise<ReadonlySet<string>> {
    const prefix = `${PREFIX}${grant}/`;
    const ids = new Set(this.known.get(grant)?.ids);
    for (const { key, value } of await this.state.list(prefix)) {
      const id = key.slice(prefix.length);
      ids.add(id);
      this.cache(grant, id, untilOf(value, this.now()));
    }
    return ids;
  }

  /** Forget the cache of grants that have ended (their shared entries expire by themselves). */
  sweep(): void {
    const now = this.now();
    for (const [grant, entry] of this.known) if (entry.until < now) this.known.delete(grant);
  }

  private cache(grant: string, commandId: string, until: number): void {
    let entry = this.known.get(grant);
    if (entry === undefined) {
      entry = { ids: new Set(), until };
      this.known.set(grant, entry);
    }
    entry.ids.add(commandId);
    entry.until = Math.max(entry.until, until);
  }
}

function untilOf(value: unknown, fallback: number): number {
  const until = typeof value === 'object' && value !== null && 'until' in value ? value.until : undefined;
  return typeof until === 'number' ? until : fallback;
}
