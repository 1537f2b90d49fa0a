import { resolve } from 'node:path';
import type { RegisteredPlugin, RegisteredSink } from '../plugin.ts';
import { loadConfigFile } from '../config/load.ts';
import { parseDuration } from '../config/duration.ts';
import { loadOrCreateGatewayIdentity } from '../identity/gateway-key.ts';
import { mintAgentToken } from '../identity/local-issuer.ts';
import { createStore } from '../store/create.ts';
import { localIssuerIdentity } from '../store/issuer-key.ts';
import type { StoreConfig } from '../config/schema.ts';
import type { GatewayIdentity } from '../identity/gateway-key.ts';
import { CliError } from './errors.ts';

/** `airlock token --agent NAME [--ttl 1h] [--config FILE]`: prints the token alone. */
export async function runToken(
  opts: { agent: string | undefined; ttl: string; config: string },
  parts: { plugins: readonly RegisteredPlugin[]; sinks: readonly RegisteredSink[] },
): Promise<string> {
  if (!opts.agent) throw new CliError('--agent NAME is required', 2);
  const ttlMs = parseDuration(opts.ttl);
  if (ttlMs === undefined) throw new CliError(`--ttl "${opts.ttl}" is not a duration like 90s, 15m, 1h`, 2);
  const config = loadConfigFile(opts.config, parts);
  const local = config.identity.issuers.find((i) => i.type === 'local');
  if (!local) throw new CliError(`${opts.config}: identity.issuers has no local issuer, so this gateway mints no tokens`);
  const max = parseDuration(local.maxTokenTtl)!;
  if (ttlMs > max) throw new CliError(`--ttl ${opts.ttl} exceeds identity.issuers[${local.name}].maxTokenTtl ${local.maxTokenTtl}`, 2);
  const dataDir = resolve(config.gateway.dataDir);
  const gateway = await loadOrCreateGatewayIdentity(dataDir);
  // The same key `airlock serve` verifies with: the store's shared key with PostgreSQL.
  const identity = await issuerFromStore(config.store, dataDir, gateway);
  try {
    return await mintAgentToken(identity, opts.agent, ttlMs);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
}

async function issuerFromStore(storeConfig: StoreConfig | undefined, dataDir: string, gateway: GatewayIdentity): Promise<GatewayIdentity> {
  if (!storeConfig || storeConfig.type === 'file') return gateway;
  let setup;
  try {
    setup = createStore(storeConfig, { dataDir, replicaId: `${gateway.gatewayId}-cli` });
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  try {
    await setup.store.open();
    return await localIssuerIdentity(setup.store, gateway);
  } catch (e) {
    throw new CliError((e as Error).message);
  } finally {
    await setup.store.close().catch(() => {});
  }
}
