/**
 * The EKS front: one Hono app mounted at /eks. Each request goes
 *   bearer grant -> request attributes -> impersonation refused -> scope -> audit record
 *   (spooled) -> EKS token -> cluster
 * and every refusal is a Kubernetes `Status` plus an audit record.
 */
import { Hono, type Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { AirlockError, ErrorCodes, isAirlockError } from '../../core/errors.ts';
import type { AuditReceipt, CloseReason, Grant, PluginContext, Session } from '../../core/plugin.ts';
import { ClusterResolver } from './cluster.ts';
import type { EksResource, EksScope } from './config.ts';
import { impersonationHeaders, upstreamRequestHeaders } from './headers.ts';
import { callUpstream, discard, plainResponse, readCappedBody, sessionStreamResponse } from './http-relay.ts';
import { MOUNT_PREFIX } from './kubeconfig.ts';
import { queryBool, requestInfo, type RequestInfo } from './request-info.ts';
import { authorizationVerb, authorize } from './scope.ts';
import { kubeStatus, statusForError, statusResponse, type KubeStatus } from './status.ts';
import { EksTokenCache } from './token.ts';
import { connectUpstream, refuseOverWebSocket, relayToClient } from './ws-relay.ts';

/** A grant id as the core mints them; anything else is not echoed into the audit. */
const CLAIMED_ID = /^[A-Za-z0-9]{1,64}$/;

type Attrs = Record<string, string | number | boolean>;

/** Query text kept in the record (selectors, options); the cap keeps one request one line. */
const MAX_RECORDED_QUERY = 2048;

function attributes(info: RequestInfo, verb: string, query: URLSearchParams, rawQuery: string): Attrs {
  if (!info.isResourceRequest) return { verb, nonResource: true, path: info.path };
  const extra: Record<string, string> = {};
  if (rawQuery) extra['query'] = rawQuery.length > MAX_RECORDED_QUERY ? `${rawQuery.slice(0, MAX_RECORDED_QUERY)}…` : rawQuery;
  if (['exec', 'attach'].includes(info.subresource)) {
    // What runs in the pod, readable without decoding the query.
    if (info.subresource === 'exec') extra['command'] = query.getAll('command').join(' ').slice(0, MAX_RECORDED_QUERY);
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
function forbiddenMessage(info: RequestInfo, verb: string, grant: Grant<unknown>, missing: string): string {
  const who = `grant ${grant.id} of "${grant.agent}" (access ${grant.access})`;
  if (!info.isResourceRequest) return `forbidden: ${who} cannot ${verb} path "${info.path}": airlock allows ${missing}`;
  const res = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  const target = info.name ? `${res} "${info.name}"` : res;
  const where = info.namespace ? ` in the namespace "${info.namespace}"` : '';
  return `${target} is forbidden: ${who} cannot ${verb} resource "${res}" in API group "${info.apiGroup}"${where}: not in the grant: ${missing}`;
}

const offeredProtocols = (c: Context): string[] =>
  (c.req.header('sec-websocket-protocol') ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);

/** A cluster's non-101 answer as a Status (it usually is one already). */
function clusterStatus(code: number, body: string): KubeStatus {
  try {
    const parsed = JSON.parse(body) as Partial<KubeStatus>;
    if (parsed.kind === 'Status' && typeof parsed.message === 'string') return kubeStatus(code, String(parsed.reason ?? 'InternalError'), parsed.message);
  } catch {
    // not JSON
  }
  return kubeStatus(code, code >= 500 ? 'InternalError' : 'BadRequest', `cluster answered ${code}: ${body.slice(0, 300)}`);
}

const settle = async (p: Promise<void>): Promise<boolean> =>
  p.then(
    () => true,
    () => false,
  );

export function eksApp(ctx: PluginContext<EksResource, EksScope>): { app: Hono; close(): Promise<void> } {
  const tokens = new EksTokenCache(ctx.aws);
  const resolvers = new Map<string, ClusterResolver>();
  for (const [name, resource] of ctx.resources) resolvers.set(name, new ClusterResolver(name, resource, ctx.aws));

  const sourceOf = (c: Context): string | undefined => {
    try {
      const info = getConnInfo(c);
      return info.remote.address ? `${info.remote.address}:${info.remote.port ?? ''}` : undefined;
    } catch {
      return undefined;
    }
  };

  /** Record a refusal (and, for scope, a policy violation); answer once recorded. */
  const refuse = async (c: Context, grant: Grant<EksScope>, attrs: Attrs, status: KubeStatus, violation: Record<string, unknown> | undefined): Promise<Response> => {
    const receipts: AuditReceipt[] = [ctx.audit.record({ type: 'k8s.request', grant, data: { ...attrs, status: status.code, reason: status.message }, outcome: 'denied' })];
    if (violation) receipts.push(ctx.audit.record({ type: 'policy.violation', grant, data: { ...attrs, ...violation }, outcome: 'denied' }));
    await Promise.all(receipts.map((r) => settle(r.durable)));
    if ((c.req.header('upgrade') ?? '').toLowerCase() === 'websocket') {
      const ws = refuseOverWebSocket(c, offeredProtocols(c), status);
      if (ws) return ws;
    }
    return statusResponse(status);
  };

  const handle = async (c: Context): Promise<Response> => {
    const started = performance.now();
    const url = new URL(c.req.url);
    const m = new RegExp(`^${MOUNT_PREFIX}/([^/]+)(/.*)?$`).exec(url.pathname);
    let resourceName = '';
    try {
      resourceName = decodeURIComponent(m?.[1] ?? '');
    } catch {
      // fall through: unknown resource
    }
    const resource = ctx.resources.get(resourceName);
    if (!m || !resource) return statusResponse(kubeStatus(404, 'NotFound', `airlock: no eks resource named "${resourceName}"`));
    const k8sPath = m[2] ?? '/';
    const rawQuery = url.search.slice(1);
    const source = sourceOf(c);

    // --- who: the grant as bearer token ---
    const authz = c.req.header('authorization') ?? '';
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authz)?.[1];
    let grant: Grant<EksScope>;
    try {
      if (!token) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'no bearer token: use the kubeconfig from your grant');
      grant = ctx.grants.bearer(token);
      if (grant.resource !== resourceName) throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `the grant is for resource "${grant.resource}", not "${resourceName}"`);
    } catch (e) {
      const code = isAirlockError(e) ? e.code : ErrorCodes.INTERNAL;
      const claimed = token?.split('.')[0];
      const receipt = ctx.audit.authFailed({
        resource: resourceName,
        claimedId: claimed && CLAIMED_ID.test(claimed) ? claimed : undefined,
        source,
        code,
        reason: isAirlockError(e) ? e.message : 'internal error',
        data: { method: c.req.method, path: k8sPath },
      });
      await settle(receipt.durable);
      const status = isAirlockError(e) ? statusForError(e) : kubeStatus(401, 'Unauthorized', 'airlock: Unauthorized');
      if ((c.req.header('upgrade') ?? '').toLowerCase() === 'websocket') {
        const ws = refuseOverWebSocket(c, offeredProtocols(c), status);
        if (ws) return ws;
      }
      return statusResponse(status);
    }

    // --- what: request attributes as the API server derives them ---
    const upgrade = (c.req.header('upgrade') ?? '').toLowerCase();
    const websocket = upgrade === 'websocket';
    let info: RequestInfo;
    try {
      if (rawQuery.includes(';')) throw new AirlockError(ErrorCodes.BAD_REQUEST, 'a query with ";" is ambiguous (Go servers reject it)');
      info = requestInfo(c.req.method, k8sPath, new URLSearchParams(rawQuery));
    } catch (e) {
      return refuse(c, grant, { method: c.req.method, path: k8sPath }, statusForError(e), { reason: (e as Error).message });
    }
    const verb = authorizationVerb(info, websocket);
    const query = new URLSearchParams(rawQuery);
    const attrs = attributes(info, verb, query, rawQuery);

    const impersonation = impersonationHeaders(c.req.raw.headers);
    if (impersonation.length > 0) {
      const message = `airlock: impersonation is not allowed (${impersonation.join(', ')}): requests run as grant ${grant.id}, with its scope only`;
      return refuse(c, grant, attrs, kubeStatus(403, 'Forbidden', message), { impersonation, reason: 'impersonation headers' });
    }

    const decision = authorize(info, verb, grant.scope);
    if (!decision.allowed) {
      const message = forbiddenMessage(info, verb, grant, decision.missing ?? 'this request');
      return refuse(c, grant, attrs, kubeStatus(403, 'Forbidden', message, info.resource ? { name: info.name, group: info.apiGroup, kind: info.resource } : undefined), {
        missing: decision.missing,
      });
    }

    if (upgrade && !websocket) {
      const message = `airlock: ${upgrade} upgrades are refused; airlock relays exec, attach and port-forward over WebSocket only (kubectl 1.30+ does this by default; unset KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false)`;
      return refuse(c, grant, attrs, kubeStatus(400, 'BadRequest', message), undefined);
    }

    // --- allowed: record, then forward ---
    // Anything that can stay open is a session, so expiry and revocation can end it.
    const streaming = websocket || verb === 'watch' || verb === 'proxy' || info.subresource === 'proxy' || (info.subresource === 'log' && queryBool(query, 'follow'));
    let session: Session | undefined;
    // The core may end the session before the stream exists (expiry while the cluster is
    // still answering): remember the cut and apply it to the closer when it arrives.
    let cut: { reason: CloseReason; message: string } | undefined;
    let closer: ((reason: CloseReason, message: string) => void) | undefined;
    const setCloser = (f: (reason: CloseReason, message: string) => void): void => {
      closer = f;
      if (cut) f(cut.reason, cut.message);
    };
    const upstreamAbort = new AbortController();
    try {
      if (streaming) {
        session = ctx.sessions.open(grant, {
          source,
          data: { ...attrs, stream: websocket ? 'websocket' : verb === 'watch' ? 'watch' : 'log' },
          onClose: (reason, message) => {
            cut = { reason, message };
            closer?.(reason, message);
            upstreamAbort.abort();
          },
        });
      }
      const receipt = session ? session.record('k8s.request', attrs, 'ok') : ctx.audit.record({ type: 'k8s.request', grant, data: attrs, outcome: 'ok' });
      await receipt.spooled.catch((e: unknown) => {
        throw new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'the audit spool cannot take the record: request refused', { cause: e });
      });
    } catch (e) {
      session?.end('error', { error: (e as Error).message });
      return statusResponse(statusForError(e));
    }

    const recordResponse = (status: number, outcome: 'ok' | 'error', extra?: Record<string, unknown>): AuditReceipt => {
      const data = { ...attrs, status, ms: Math.round((performance.now() - started) * 10) / 10, ...extra };
      return session ? session.record('k8s.response', data, outcome) : ctx.audit.record({ type: 'k8s.response', grant, data, outcome });
    };
    const failed = async (e: unknown): Promise<Response> => {
      const status = cut ? kubeStatus(cut.reason === 'shutdown' ? 503 : 401, cut.reason === 'shutdown' ? 'ServiceUnavailable' : 'Unauthorized', `airlock: ${cut.message}`) : statusForError(e);
      await settle(recordResponse(status.code, 'error', { error: status.message }).durable);
      session?.end('error', { error: status.message });
      return statusResponse(status);
    };

    try {
      const target = await resolvers.get(resourceName)!.target();
      const credentials = await ctx.aws.credentials({ resource: resourceName, grant });
      const eksToken = await tokens.token(resource.cluster, resource.region, credentials);
      const upstreamPath = `${target.basePath}${k8sPath}${rawQuery ? `?${rawQuery}` : ''}`;
      const headers = { ...upstreamRequestHeaders(c.req.raw.headers, { websocket }), authorization: `Bearer ${eksToken}` };

      if (websocket) {
        const protocols = offeredProtocols(c);
        const up = await connectUpstream({ url: `${target.origin.replace(/^https:/, 'wss:')}${upstreamPath}`, headers, caPem: target.caPem, protocols });
        if (!up.ok) {
          await settle(recordResponse(up.status, up.status >= 500 ? 'error' : 'ok').durable);
          session?.end('client', { endedBy: 'cluster', status: up.status });
          // The cluster's own refusal, passed on over the channel protocol when we can.
          const ws = refuseOverWebSocket(c, protocols, clusterStatus(up.status, up.body));
          return ws ?? new Response(up.body, { status: up.status, headers: up.headers });
        }
        if (!(await settle(recordResponse(101, 'ok', { protocol: up.protocol }).durable))) {
          up.leg.socket.terminate();
          throw new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'the audit spool cannot take the record: session refused');
        }
        if (cut) {
          up.leg.socket.terminate();
          throw new AirlockError(ErrorCodes.GRANT_EXPIRED, cut.message);
        }
        return await relayToClient({ c, upstream: up.leg, protocol: up.protocol, session: session!, setCloser });
      }

      const body = await readCappedBody(c.req.raw);
      c.req.raw.signal?.addEventListener('abort', () => upstreamAbort.abort(), { once: true });
      const res = await callUpstream({ url: `${target.origin}${upstreamPath}`, method: c.req.method, headers, body, dispatcher: target.agent, signal: upstreamAbort.signal });

      if (res.statusCode === 401) {
        // The cluster refused airlock's own identity: not the agent's fault, and kubectl
        // must not read it as "your credentials are wrong".
        discard(res.body);
        tokens.clear();
        throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `cluster "${resource.cluster}" did not accept airlock's AWS identity (401): check its EKS access entry`);
      }
      if (!(await settle(recordResponse(res.statusCode, res.statusCode >= 500 ? 'error' : 'ok').durable))) {
        discard(res.body);
        throw new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'the audit record could not be made durable: response withheld');
      }
      if (!session) return plainResponse(c.req.method, res);
      // A last event can be appended only to an uncompressed JSON watch stream.
      const isJson = /json/.test(String(res.headers['content-type'] ?? '')) && !res.headers['content-encoding'];
      return sessionStreamResponse(
        res,
        session,
        setCloser,
        {
          farewell: (reason, message) => {
            const text = `${message.startsWith('airlock') ? '' : 'airlock: '}${message} (${reason})`;
            if (verb === 'watch' && isJson) {
              const code = reason === 'shutdown' ? 503 : 401;
              const event = { type: 'ERROR', object: kubeStatus(code, code === 503 ? 'ServiceUnavailable' : 'Unauthorized', text) };
              return new TextEncoder().encode(`${JSON.stringify(event)}\n`);
            }
            return verb === 'watch' ? undefined : new TextEncoder().encode(`\n${text}\n`);
          },
        },
        () => upstreamAbort.abort(),
      );
    } catch (e) {
      return failed(e);
    }
  };

  const app = new Hono();
  app.all('/*', handle);
  return {
    app,
    close: async () => {
      await Promise.all([...resolvers.values()].map((r) => r.close()));
    },
  };
}
