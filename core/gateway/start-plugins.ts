/**
 * Starts every plugin that has something to serve (a resource of its type or a
 * `gateway.<type>` block), each from its own host object. If one fails to start, the ones
 * already started are closed again, so a failed start leaves nothing listening.
 */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { AwsContext, GatewayInfo, GrantAuthenticator, RegisteredPlugin, StartedPlugin } from '../plugin.ts';
import type { AirlockConfig } from '../config/schema.ts';
import type { GrantService } from '../grants/service.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import type { Recorder } from '../audit/recorder.ts';
import type { PluginStateStore } from '../store/types.ts';
import { buildPluginHost } from './plugin-host.ts';

export interface StartedPlugins {
  readonly listening: Record<string, readonly string[]>;
  /** The started plugin of a resource type, if any. */
  byType(type: string): StartedPlugin | undefined;
  close(): Promise<void>;
}

export async function startPlugins(parts: {
  plugins: readonly RegisteredPlugin[];
  config: AirlockConfig;
  gateway: GatewayInfo;
  grants: GrantService;
  sessions: SessionRegistry;
  recorder: Recorder;
  aws: <S>(grants: GrantAuthenticator<S>) => AwsContext<S>;
  /** The store's plugin state; each plugin sees its own namespace. */
  state: PluginStateStore;
  app: Hono;
  log: Logger;
  /** Called with each plugin as soon as it has started (before the next one starts). */
  onStarted: (plugin: StartedPlugin) => void;
}): Promise<StartedPlugins> {
  const instances: StartedPlugin[] = [];
  const listening: Record<string, readonly string[]> = {};
  const close = async () => {
    for (const instance of instances.splice(0).reverse()) await instance.close().catch((err: unknown) => parts.log.error({ err }, 'plugin close failed'));
  };
  try {
    for (const plugin of parts.plugins) {
      const resources = new Map(Object.entries(parts.config.resources).filter(([, r]) => r.type === plugin.type));
      const listenerConfig = parts.config.gateway[plugin.type];
      if (resources.size === 0 && listenerConfig === undefined) continue;
      const host = buildPluginHost({
        plugin,
        gateway: parts.gateway,
        resources,
        listenerConfig,
        grants: parts.grants,
        sessions: parts.sessions,
        recorder: parts.recorder,
        aws: parts.aws,
        state: parts.state,
        log: parts.log,
        mount: (prefix, sub) => parts.app.route(prefix, sub),
      });
      const instance = await plugin.start(host);
      instances.push(instance);
      listening[plugin.type] = instance.listening;
      parts.onStarted(instance);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { listening, byType: (type) => instances.find((i) => i.type === type), close };
}
