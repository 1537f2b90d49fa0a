/**
 * MCP tool of the eks plugin: `kubernetes_request {verb, path, body?}`, one finite request
 * to the cluster as the grant: the request attributes come from the same `requestInfo`, the
 * same `authorize` against the grant's scope decides, and the same `k8s.request` /
 * `k8s.response` records are written. Streams and pod channels (watch, exec, attach,
 * port-forward, proxy, log follow) are refused: a tool call has one answer.
 */
import { z } from 'zod';
import { AirlockError, ErrorCodes, jsonToolResult, type PluginContext, type ToolContribution } from '../../core/public.ts';
import type { EksResource, EksScope } from './config.ts';
import type { Upstreams } from './forward.ts';
import { callUpstream, discard } from './http-relay.ts';
import { requestInfo, type RequestInfo } from './request-info.ts';
import { authorize } from './scope.ts';

const METHOD_OF: Readonly<Record<string, string>> = { get: 'GET', list: 'GET', create: 'POST', update: 'PUT', patch: 'PATCH', delete: 'DELETE', deletecollection: 'DELETE' };
const CHANNELS = new Set(['exec', 'attach', 'portforward', 'proxy']);
/** Largest answer read from the cluster (the result is then cut to the call's byte cap). */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

type Attrs = Record<string, string | number | boolean>;

function attributes(info: RequestInfo, verb: string, rawQuery: string): Attrs {
  if (!info.isResourceRequest) return { verb, nonResource: true, path: info.path, via: 'mcp' };
  return { verb, apiGroup: info.apiGroup, apiVersion: info.apiVersion, resource: info.resource, subresource: info.subresource, namespace: info.namespace, name: info.name, path: info.path, ...(rawQuery ? { query: rawQuery.slice(0, 2048) } : {}), via: 'mcp' };
}

/** What the request is, refusing anything that is not one finite call of the asked verb. */
function classify(verb: string, path: string): { info: RequestInfo; method: string; k8sPath: string; rawQuery: string } {
  const method = METHOD_OF[verb];
  if (!method) throw new AirlockError(ErrorCodes.BAD_REQUEST, `verb "${verb}" is not served over MCP (use ${Object.keys(METHOD_OF).join(', ')}; no watch, exec or proxy)`);
  if (!path.startsWith('/')) throw new AirlockError(ErrorCodes.BAD_REQUEST, 'path must start with / (e.g. /api/v1/namespaces/default/pods)');
  const q = path.indexOf('?');
  const k8sPath = q < 0 ? path : path.slice(0, q);
  const rawQuery = q < 0 ? '' : path.slice(q + 1);
  if (rawQuery.includes(';')) throw new AirlockError(ErrorCodes.BAD_REQUEST, 'a query with ";" is ambiguous (Go servers reject it)');
  const query = new URLSearchParams(rawQuery);
  if (query.get('watch') === 'true' || query.get('watch') === '1' || query.get('follow') === 'true') throw new AirlockError(ErrorCodes.BAD_REQUEST, 'watch and follow streams are not served over MCP');
  const info = requestInfo(method, k8sPath, query);
  if (info.verb !== verb) throw new AirlockError(ErrorCodes.BAD_REQUEST, `${method} ${k8sPath} is a "${info.verb}" request, not "${verb}"`);
  if (CHANNELS.has(info.subresource) || info.verb === 'proxy' || info.verb === 'watch') throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `${info.subresource || info.verb} is not available over MCP`);
  return { info, method, k8sPath, rawQuery };
}

/** The tool over the plugin's `upstreams` (shared with the HTTP front; closed by their owner). */
export function eksTools(ctx: PluginContext<EksResource, EksScope>, upstreams: Upstreams): ToolContribution<EksScope>[] {
  const { tokens, resolvers } = upstreams;

  const tool: ToolContribution<EksScope> = {
    name: 'kubernetes_request',
    description: 'One Kubernetes API request on the cluster of your grant, e.g. verb "get" path "/api/v1/namespaces/default/pods/web". JSON answer (a Status on errors). No watch, exec, attach or proxy.',
    inputSchema: z.object({
      verb: z.enum(['get', 'list', 'create', 'update', 'patch', 'delete', 'deletecollection']),
      path: z.string().min(1).max(4096).describe('API path with optional query, e.g. /apis/apps/v1/namespaces/web/deployments'),
      body: z.record(z.string(), z.unknown()).optional().describe('object for create/update, merge patch for patch'),
    }),
    async run(call, input) {
      const grant = call.grant;
      const verb = String(input.verb);
      let parsed: ReturnType<typeof classify> | undefined;
      try {
        parsed = classify(verb, String(input.path));
        const decision = authorize(parsed.info, verb, grant.scope);
        if (!decision.allowed) throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `not in the grant: ${decision.missing ?? 'this request'}`);
      } catch (e) {
        const attrs = parsed ? attributes(parsed.info, verb, parsed.rawQuery) : { verb, path: String(input.path).slice(0, 2048), via: 'mcp' };
        await ctx.audit.exchange(grant, { type: 'k8s.request', data: attrs }).refuse(ErrorCodes.OUT_OF_SCOPE, (e as Error).message);
        throw e;
      }
      const { info, method, k8sPath, rawQuery } = parsed;
      const attrs = attributes(info, verb, rawQuery);
      const started = performance.now();
      // One audited exchange: k8s.request spooled before the cluster sees anything,
      // k8s.response as its outcome, durable before the model sees the answer.
      const exchange = ctx.audit.exchange(grant, { type: 'k8s.request', data: attrs, resultType: 'k8s.response' });
      await exchange.ready();
      const respond = (status: number, outcome: 'ok' | 'error', extra?: Record<string, unknown>) =>
        exchange.finish(outcome, { ...attrs, status, ms: Math.round((performance.now() - started) * 10) / 10, ...extra });
      let status: number;
      let text: string;
      try {
        const resource = ctx.resources.get(grant.resource)!;
        const target = await resolvers.get(grant.resource)!.target();
        const credentials = await ctx.aws.credentials({ resource: grant.resource, grant });
        const eksToken = await tokens.token(resource.cluster, resource.region, credentials);
        const body = input.body === undefined ? undefined : Buffer.from(JSON.stringify(input.body));
        const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${eksToken}`, ...(body ? { 'content-type': verb === 'patch' ? 'application/merge-patch+json' : 'application/json' } : {}) };
        const res = await callUpstream({ url: `${target.origin}${target.basePath}${k8sPath}${rawQuery ? `?${rawQuery}` : ''}`, method, headers, body, dispatcher: target.agent, signal: call.signal });
        status = res.statusCode;
        if (status === 401) {
          discard(res.body);
          tokens.clear();
          throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `cluster "${resource.cluster}" did not accept airlock's AWS identity (401): check its EKS access entry`);
        }
        text = await readCapped(res.body, MAX_ANSWER_BYTES);
      } catch (e) {
        await respond(502, 'error', { error: (e as Error).message }).catch(() => {});
        throw e;
      }
      await respond(status, status >= 500 ? 'error' : 'ok');
      let answer: Record<string, unknown>;
      try {
        answer = JSON.parse(text) as Record<string, unknown>;
      } catch {
        answer = { text };
      }
      return jsonToolResult(`Kubernetes ${verb} ${k8sPath}: HTTP ${status}`, answer, call.limits, { status }, status >= 400);
    },
  };
  return [tool];
}

async function readCapped(body: AsyncIterable<unknown> & { destroy(): void }, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > max) {
      body.destroy();
      throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `the cluster's answer is over ${max} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
