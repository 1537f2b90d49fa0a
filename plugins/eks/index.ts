/**
 * The eks plugin: the Kubernetes API of EKS clusters behind per-grant scope. An agent runs
 * kubectl with the kubeconfig from its grant (bearer = grant credential, server = airlock);
 * airlock checks each request's attributes against the grant, records it, and forwards it
 * with an EKS token made from airlock's own AWS identity.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import { definePlugin } from '../../core/plugin.ts';
import { eksApp } from './app.ts';
import { eksResourceSchema, eksScopeSchema, type EksResource, type EksScope } from './config.ts';
import { eksConnectInfo, MOUNT_PREFIX } from './kubeconfig.ts';
import { resolveEksScope } from './scope.ts';
import { eksTools } from './tools.ts';
import { clusterUpstreams } from './forward.ts';

export const eksPlugin = definePlugin<EksResource, EksScope>({
  type: 'eks',
  credentials: ['bearer'],
  resourceSchema: eksResourceSchema,
  scopeSchema: eksScopeSchema,

  accessLevels: (resource) => Object.keys(resource.access),

  resolveScope(resource, access, requested) {
    const level = resource.access[access];
    if (!level) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown access level "${access}" (levels: ${Object.keys(resource.access).join(', ')})`);
    return resolveEksScope(level, requested);
  },

  awsBinding: (resource) => ({ region: resource.region, roleArn: resource.roleArn }),

  async start(ctx) {
    const upstreams = clusterUpstreams(ctx);
    ctx.mount(MOUNT_PREFIX, eksApp(ctx, upstreams));
    if (!ctx.gateway.httpCaPem) {
      ctx.log.warn('gateway.http.tls is not set: kubectl sends bearer tokens only over https, so eks grants need TLS on the HTTP listener');
    }
    return {
      tools: eksTools(ctx, upstreams),
      close: () => upstreams.close(),
      connectInfo: ({ grant, secret }) => eksConnectInfo({ grant, secret, gateway: ctx.gateway }) };
  },
});

export default eksPlugin;
