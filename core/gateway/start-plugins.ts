/**
 * Starts every plugin that has something to serve (a resource of its type or a
 * `gateway.<type>` block), each with its own context. If one fails to start, the ones
 * already started are closed again, so a failed start leaves nothing listening.
 */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { AwsContext, GatewayInfo, GrantAuthenticator, PluginInstance, RegisteredPlugin } from '../plugin.ts';
import type { AirlockConfig } from '../config/schema.ts';
import type { GrantService } from '../grants/service.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import type { Recorder } from './recorder.ts';
import { buildPluginContext } from './plugin-context.ts';

export interface StartedPlugins {
  readonly listening: Record<string, readonly string[]>;
  close(): Promise<void>;
}

export async function startPlugins(parts: {
  plugins: readonly RegisteredPlugin[];
  config: AirlockConfig;
  gateway: GatewayInfo;
  grants: GrantService;
  sessions: SessionRegistry;
  recorder: Recorder;
  aws: (grants: GrantAuthenticator) => AwsContext;
  app: Hono;
  log: Logger;
}): Promise<StartedPlugins> {
  const instances: PluginInstance[] = [];
  const listening: Record<string, readonly string[]> = {};
  const close = async () => {
    for (const instance of instances.reverse()) await instance.close().catch((err: unknown) => parts.log.error({ err }, 'plugin close failed'));
  };
  try {
    for (const plugin of parts.plugins) {
      const resources = new Map(Object.entries(parts.config.resources).filter(([, r]) => r.type === plugin.type));
      const listenerConfig = parts.config.gateway[plugin.type] as Record<string, unknown> | undefined;
      if (resources.size === 0 && listenerConfig === undefined) continue;
      const gateway = parts.gateway;
      const ctx = buildPluginContext({
        plugin,
        gateway: {
          get publicUrl() {
            return gateway.publicUrl;
          },
          httpCaPem: gateway.httpCaPem,
          dataDir: gateway.dataDir,
          gatewayId: gateway.gatewayId,
          listenerConfig,
          tls: gateway.tls,
        },
        resources,
        grants: parts.grants,
        sessions: parts.sessions,
        recorder: parts.recorder,
        aws: parts.aws,
        log: parts.log,
        mount: (prefix, sub) => parts.app.route(prefix, sub),
      });
      const instance = await plugin.start(ctx);
      instances.push(instance);
      listening[plugin.type] = instance.listening ?? [];
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { listening, close };
}
