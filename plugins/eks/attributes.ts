/** What a Kubernetes request is, as recorded and as told back to kubectl users. */
import type { Context } from 'hono';
import type { Grant } from '../../core/plugin.ts';
import type { RequestInfo } from './request-info.ts';
import { kubeStatus, type KubeStatus } from './status.ts';

export type Attrs = Record<string, string | number | boolean>;

/**
 * The longest query string airlock records, whole: a longer one is refused (inspect.ts), so
 * no padding can push an exec's command out of the record.
 */
export const MAX_RECORDED_QUERY = 64 * 1024;

export function attributes(info: RequestInfo, verb: string, query: URLSearchParams, rawQuery: string): Attrs {
  if (!info.isResourceRequest) return { verb, nonResource: true, path: info.path };
  const extra: Record<string, string> = {};
  if (rawQuery) extra['query'] = rawQuery;
  if (['exec', 'attach'].includes(info.subresource)) {
    // What runs in the pod, readable without decoding the query.
    // What runs in the pod, readable without decoding the query; whole (the query is bounded).
    if (info.subresource === 'exec') extra['command'] = query.getAll('command').join(' ');
    const container = query.get('container');
    if (container) extra['container'] = container;
  }
  return {
    verb,
    apiGroup: info.apiGroup,
    apiVersion: info.apiVersion,
    resource: info.resource,
    subresource: info.subresource,
    namespace: info.namespace,
    name: info.name,
    path: info.path,
    ...extra,
  };
}

/** The API server's wording, so kubectl users read a familiar message. */
export function forbiddenMessage(info: RequestInfo, verb: string, grant: Grant<unknown>, missing: string): string {
  const who = `grant ${grant.id} of "${grant.agent}" (access ${grant.access})`;
  if (!info.isResourceRequest) return `forbidden: ${who} cannot ${verb} path "${info.path}": airlock allows ${missing}`;
  const res = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  const target = info.name ? `${res} "${info.name}"` : res;
  const where = info.namespace ? ` in the namespace "${info.namespace}"` : '';
  return `${target} is forbidden: ${who} cannot ${verb} resource "${res}" in API group "${info.apiGroup}"${where}: not in the grant: ${missing}`;
}

export const offeredProtocols = (c: Context): string[] =>
  (c.req.header('sec-websocket-protocol') ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);

/** A cluster's non-101 answer as a Status (it usually is one already). */
export function clusterStatus(code: number, body: string): KubeStatus {
  try {
    const parsed = JSON.parse(body) as Partial<KubeStatus>;
    if (parsed.kind === 'Status' && typeof parsed.message === 'string') return kubeStatus(code, String(parsed.reason ?? 'InternalError'), parsed.message);
  } catch {
    // not JSON
  }
  return kubeStatus(code, code >= 500 ? 'InternalError' : 'BadRequest', `cluster answered ${code}: ${body.slice(0, 300)}`);
}
