/**
 * The `connect` block of an eks grant: a kubeconfig whose server is airlock, whose CA is
 * airlock's HTTP certificate, and whose user is the grant as a bearer token. kubectl sends
 * bearer tokens only over https, hence the TLS requirement.
 */
import { stringify } from 'yaml';
import type { ConnectInfo, GatewayInfo, Grant } from '../../core/plugin.ts';
import type { EksScope } from './config.ts';

export const MOUNT_PREFIX = '/eks';

export function serverUrl(gateway: GatewayInfo, resourceName: string): string {
  return `${gateway.publicUrl.replace(/\/+$/, '')}${MOUNT_PREFIX}/${encodeURIComponent(resourceName)}`;
}

export function eksConnectInfo(input: { grant: Grant<EksScope>; secret: string; gateway: GatewayInfo }): ConnectInfo {
  const { grant, secret, gateway } = input;
  const resourceName = grant.resource;
  const server = serverUrl(gateway, resourceName);
  const name = `airlock-${resourceName}`;
  const first = grant.scope.namespaces[0];
  const namespace = first !== undefined && first !== '*' ? first : undefined;
  const kubeconfig = stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: {
          server,
          ...(gateway.httpCaPem ? { 'certificate-authority-data': Buffer.from(gateway.httpCaPem).toString('base64') } : {}),
        },
      },
    ],
    users: [{ name: `grant-${grant.id}`, user: { token: `${grant.id}.${secret}` } }],
    contexts: [{ name, context: { cluster: name, user: `grant-${grant.id}`, ...(namespace ? { namespace } : {}) } }],
    'current-context': name,
  });
  return {
    kubeconfig,
    server,
    ...(server.startsWith('https://') ? {} : { warning: 'gateway.http.tls is not set: kubectl sends bearer tokens only over https' }),
    env: { KUBECONFIG_DATA: Buffer.from(kubeconfig).toString('base64') },
  };
}
