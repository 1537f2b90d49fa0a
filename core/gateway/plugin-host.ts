/** Builds the one host object a registered plugin starts from: nothing else of core reaches it. */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { AwsContext, GatewayInfo, GrantAuthenticator, PluginHost, RegisteredPlugin } from '../plugin.ts';
import type { GrantService } from '../grants/service.ts';
import { authenticatorFor } from '../grants/authenticator.ts';
import type { Recorder } from '../audit/recorder.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import type { PluginStateStore } from '../store/types.ts';
import { namespacedState } from './plugin-state.ts';

export interface PluginHostParts {
  plugin: RegisteredPlugin;
  gateway: GatewayInfo;
  resources: ReadonlyMap<string, { type: string }>;
  listenerConfig: unknown;
  grants: GrantService;
  sessions: SessionRegistry;
  recorder: Recorder;
  aws: <S>(grants: GrantAuthenticator<S>) => AwsContext<S>;
  state: PluginStateStore;
  log: Logger;
  mount: (prefix: string, app: Hono) => void;
}

export function buildPluginHost(parts: PluginHostParts): PluginHost {
  const type = parts.plugin.type;
  return {
    gateway: parts.gateway,
    resources: parts.resources,
    listenerConfig: parts.listenerConfig,
    grants: (parseScope) => authenticatorFor(parts.grants, type, parseScope),
    sessions: () => parts.sessions.opener(),
    audit: parts.recorder,
    aws: (grants) => parts.aws(grants),
    state: namespacedState(parts.state, type),
    log: parts.log.child({ plugin: type }),
    mount: (prefix, app) => {
      if (!/^\/[a-z0-9][a-z0-9/_-]*$/.test(prefix) || prefix.startsWith('/v1') || prefix.startsWith('/.well-known')) {
        throw new Error(`plugin ${type}: cannot mount on "${prefix}"`);
      }
      parts.mount(prefix, app);
    },
  };
}
