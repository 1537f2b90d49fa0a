/** Builds the one context object a plugin receives: nothing else of core reaches it. */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { AwsContext, GatewayInfo, PluginContext, RegisteredPlugin, SessionOpener } from '../plugin.ts';
import type { GrantService } from '../grants/service.ts';
import { authenticatorFor } from '../grants/authenticator.ts';
import type { Recorder } from './recorder.ts';

export interface PluginContextParts {
  plugin: RegisteredPlugin;
  gateway: GatewayInfo;
  resources: ReadonlyMap<string, { type: string }>;
  grants: GrantService;
  sessions: SessionOpener;
  recorder: Recorder;
  aws: (grants: ReturnType<typeof authenticatorFor>) => AwsContext;
  log: Logger;
  mount: (prefix: string, app: Hono) => void;
}

export function buildPluginContext(parts: PluginContextParts): PluginContext<{ type: string }> {
  const grants = authenticatorFor(parts.grants, parts.plugin.type);
  return {
    type: parts.plugin.type,
    gateway: parts.gateway,
    resources: parts.resources,
    grants,
    sessions: parts.sessions,
    audit: parts.recorder,
    aws: parts.aws(grants),
    log: parts.log.child({ plugin: parts.plugin.type }),
    mount: (prefix, app) => {
      if (!/^\/[a-z0-9][a-z0-9/_-]*$/.test(prefix) || prefix.startsWith('/v1') || prefix.startsWith('/.well-known')) {
        throw new Error(`plugin ${parts.plugin.type}: cannot mount on "${prefix}"`);
      }
      parts.mount(prefix, app);
    },
  };
}
