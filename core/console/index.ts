/**
 * Starts the console: its audit index, fed by following the spool from the oldest record
 * still in it (from the first signed-in request on), and the Hono app the hub mounts at
 * `/console`.
 */
import { join } from 'node:path';
import type { JWK } from 'jose';
import type { Hono } from 'hono';
import { followSpool, type Follower } from '../audit/spool-follow.ts';
import { AuditIndex } from './audit-index.ts';
import { ChainState } from './chain-state.ts';
import { consoleApp } from './app.tsx';
import type { ConsoleParts } from './parts.ts';

export interface StartedConsole {
  readonly app: Hono;
  readonly index: AuditIndex;
  /** What every signed-in page awaits first: start the index if it is not, wait until it caught up (bounded). */
  warmUp(): Promise<void>;
  close(): Promise<void>;
}

/** How long the first signed-in page waits for the index to catch up before it shows what there is. */
const WARM_UP_MS = 5_000;

/**
 * The index starts with the first signed-in console request, not with the gateway: until
 * somebody uses the console, following, verifying and indexing every record costs nothing
 * (it was 7-10% of busy time under an 8-client pgbench load). It then catches up from the
 * oldest record still in the spool, as it did at start before.
 */
export function startConsole(parts: Omit<ConsoleParts, 'audit'> & { dataDir: string; gatewayId: string; publicKeys: JWK[] }): StartedConsole {
  const index = new AuditIndex(new ChainState(parts.publicKeys, parts.gatewayId));
  let follower: Follower | undefined;
  let current = false;
  let caughtUp!: () => void;
  const caughtUpOnce = new Promise<void>((resolve) => (caughtUp = resolve)).then(() => void (current = true));
  const startIndexing = (): Follower => {
    let first = true;
    return followSpool({
      dir: join(parts.dataDir, 'spool'),
      nextSeq: 1,
      batch: 2000,
      intervalMs: 100,
      log: parts.log.child({ part: 'console-index' }),
      // Records before the oldest segment were delivered and deleted: not a gap to report.
      onRecords: async (records, missed) => {
        await index.add(records, Boolean(missed) && !first);
        first = false;
      },
      onCaughtUp: caughtUp,
    });
  };
  const warmUp = async (): Promise<void> => {
    if (current) return; // caught up once: from then on it follows within its poll interval
    follower ??= startIndexing();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([caughtUpOnce, new Promise<void>((resolve) => (timer = setTimeout(resolve, WARM_UP_MS)))]);
    clearTimeout(timer);
  };
  return { app: consoleApp({ ...parts, audit: index, warmUp }), index, warmUp, close: async () => follower?.stop() };
}
