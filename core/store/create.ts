/** The store a config names: the file store in dataDir (default) or PostgreSQL. */
import { parseDuration } from '../config/duration.ts';
import type { StoreConfig } from '../config/schema.ts';
import { FileSharedStore } from './file/store.ts';
import { PostgresSharedStore } from './postgres/store.ts';
import type { SharedStore } from './types.ts';

export interface StoreSetup {
  readonly store: SharedStore;
  /** Past this without a confirmed view, live sessions must be closed. */
  readonly maxStalenessMs: number;
}

const DEFAULT_MAX_STALENESS_MS = 15_000;

export function createStore(
  config: StoreConfig | undefined,
  context: { dataDir: string; replicaId: string; env?: NodeJS.ProcessEnv; onError?: (message: string) => void },
): StoreSetup {
  if (!config || config.type === 'file') {
    return { store: new FileSharedStore(context.dataDir, context.replicaId), maxStalenessMs: Number.POSITIVE_INFINITY };
  }
  const url = (context.env ?? process.env)[config.urlEnv];
  if (!url) throw new Error(`store: environment variable ${config.urlEnv} (store.urlEnv) is not set; it must hold the PostgreSQL connection URL`);
  const maxStalenessMs = parseDuration(config.maxStaleness) ?? DEFAULT_MAX_STALENESS_MS;
  // Poll often enough that a lost notification is caught well inside maxStaleness.
  const pollMs = Math.max(250, Math.min(2_000, Math.floor(maxStalenessMs / 4)));
  const store = new PostgresSharedStore({ url, schema: config.schema, replicaId: context.replicaId, pollMs, ...(context.onError ? { onError: context.onError } : {}) });
  return { store, maxStalenessMs };
}
