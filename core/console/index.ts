/**
 * Starts the console: its audit index, fed by following the spool from the oldest record
 * still in it, and the Hono app the hub mounts at `/console`.
 */
import { join } from 'node:path';
import type { JWK } from 'jose';
import type { Hono } from 'hono';
import { followSpool } from '../audit/spool-follow.ts';
import { AuditIndex } from './audit-index.ts';
import { ChainState } from './chain-state.ts';
import { consoleApp } from './app.tsx';
import type { ConsoleParts } from './parts.ts';

export interface StartedConsole {
  readonly app: Hono;
  readonly index: AuditIndex;
  close(): Promise<void>;
}

export function startConsole(parts: Omit<ConsoleParts, 'audit'> & { dataDir: string; gatewayId: string; publicKeys: JWK[] }): StartedConsole {
  const index = new AuditIndex(new ChainState(parts.publicKeys, parts.gatewayId));
  let first = true;
  const follower = followSpool({
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
  });
  return { app: consoleApp({ ...parts, audit: index }), index, close: () => follower.stop() };
}
