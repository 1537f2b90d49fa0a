/**
 * The last stages of an EKS request: admit (open the session of a stream, write the
 * request record and wait until it is spooled), then forward over HTTP or WebSocket with
 * an EKS token made from airlock's own AWS identity, and record the cluster's answer
 * (durable before the client sees it).
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { AuditOutcome, PluginContext, Session } from '../../core/plugin.ts';
import { clusterStatus, offeredProtocols } from './attributes.ts';
import type { AdmittedCall, InspectedCall } from './call.ts';
import { ClusterResolver } from './cluster.ts';
import type { EksResource, EksScope } from './config.ts';
import { upstreamRequestHeaders } from './headers.ts';
import { callUpstream, discard, plainResponse, readCappedBody, sessionStreamResponse } from './http-relay.ts';
import { kubeStatus, statusForError, statusResponse } from './status.ts';
import { EksTokenCache } from './token.ts';
import { connectUpstream, refuseOverWebSocket, relayToClient } from './ws-relay.ts';

type Ctx = PluginContext<EksResource, EksScope>;

export interface Upstreams {
  resolvers: ReadonlyMap<string, ClusterResolver>;
  tokens: EksTokenCache;
}

/**
 * One set per plugin instance, shared by the HTTP front and the MCP tool: each cluster is
 * described once, its connection pool and EKS tokens serve both ways in.
 */
export function clusterUpstreams(ctx: Ctx): Upstreams & { close(): Promise<void> } {
  const resolvers = new Map<string, ClusterResolver>();
  for (const [name, resource] of ctx.resources) resolvers.set(name, new ClusterResolver(name, resource, ctx.aws));
  return {
    resolvers,
    tokens: new EksTokenCache(ctx.aws),
    close: async () => {
      await Promise.all([...resolvers.values()].map((r) => r.close()));
    },
  };
}

/** Stage 4: a stream becomes a session; the request record is spooled before anything is sent. */
export async function admit(ctx: Ctx, call: InspectedCall): Promise<AdmittedCall | Response> {
  const upstreamAbort = new AbortController();
  let session: Session<EksScope> | undefined;
  try {
    if (call.streaming) {
      session = ctx.sessions.open(call.grant, { source: call.source, data: { ...call.attrs, stream: streamKind(call) } });
      // After the closers (the stream's farewell is written first), the upstream call is cut.
      session.signal.addEventListener('abort', () => upstreamAbort.abort(), { once: true });
    }
    const exchange = ctx.audit.exchange(session ?? call.grant, { type: 'k8s.request', data: call.attrs });
    await exchange.ready();
    return { ...call, exchange, session, upstreamAbort };
  } catch (e) {
    session?.end('error', { error: (e as Error).message });
    return statusResponse(statusForError(e));
  }
}

function streamKind(call: InspectedCall): string {
  if (call.websocket) return 'websocket';
  if (call.verb === 'watch' || call.verb === 'list') return call.verb;
  return call.info.subresource === 'log' ? 'log' : 'proxy';
}

/** Record the cluster's answer; resolves once the request record is durable. */
function recordAnswer(call: AdmittedCall, status: number, outcome: AuditOutcome, extra?: Record<string, unknown>): Promise<void> {
  return call.exchange.finish(outcome, { ...call.attrs, status, ms: Math.round((performance.now() - call.started) * 10) / 10, ...extra });
}

/** Whatever went wrong after admission: recorded, the session ended, a Status answered. */
export async function failed(call: AdmittedCall, e: unknown): Promise<Response> {
  const cut = call.session?.cut;
  const status = cut ? kubeStatus(cut.reason === 'shutdown' ? 503 : 401, cut.reason === 'shutdown' ? 'ServiceUnavailable' : 'Unauthorized', `airlock: ${cut.message}`) : statusForError(e);
  await recordAnswer(call, status.code, 'error', { error: status.message }).catch(() => {});
  call.session?.end('error', { error: status.message });
  return statusResponse(status);
}

/** Stage 5: where the cluster is, and airlock's EKS token for it. */
async function upstreamTarget(ctx: Ctx, up: Upstreams, call: AdmittedCall) {
  const target = await up.resolvers.get(call.resourceName)!.target();
  const credentials = await ctx.aws.credentials({ resource: call.resourceName, grant: call.grant });
  const eksToken = await up.tokens.token(call.resource.cluster, call.resource.region, credentials);
  const path = `${target.basePath}${call.k8sPath}${call.rawQuery ? `?${call.rawQuery}` : ''}`;
  const headers = { ...upstreamRequestHeaders(call.c.req.raw.headers, { websocket: call.websocket }), authorization: `Bearer ${eksToken}` };
  return { target, path, headers };
}

/** Stage 6a: exec / attach / port-forward over WebSocket. */
export async function forwardWebSocket(ctx: Ctx, up: Upstreams, call: AdmittedCall): Promise<Response> {
  const { target, path, headers } = await upstreamTarget(ctx, up, call);
  const protocols = offeredProtocols(call.c);
  const result = await connectUpstream({ url: `${target.origin.replace(/^https:/, 'wss:')}${path}`, headers, caPem: target.caPem, protocols });
  if (!result.ok) {
    await recordAnswer(call, result.status, result.status >= 500 ? 'error' : 'ok').catch(() => {});
    call.session?.end('client', { endedBy: 'cluster', status: result.status });
    // The cluster's own refusal, passed on over the channel protocol when we can.
    const ws = refuseOverWebSocket(call.c, protocols, clusterStatus(result.status, result.body));
    return ws ?? new Response(result.body, { status: result.status, headers: result.headers });
  }
  try {
    await recordAnswer(call, 101, 'ok', { protocol: result.protocol });
  } catch (e) {
    result.leg.socket.terminate();
    throw e;
  }
  const cut = call.session!.cut;
  if (cut) {
    result.leg.socket.terminate();
    throw new AirlockError(ErrorCodes.GRANT_EXPIRED, cut.message);
  }
  return relayToClient({ c: call.c, upstream: result.leg, protocol: result.protocol, session: call.session! });
}

/** Stage 6b: a plain or streamed HTTP request. */
export async function forwardHttp(ctx: Ctx, up: Upstreams, call: AdmittedCall): Promise<Response> {
  const { target, path, headers } = await upstreamTarget(ctx, up, call);
  const { c, upstreamAbort } = call;
  const body = await readCappedBody(c.req.raw);
  c.req.raw.signal?.addEventListener('abort', () => upstreamAbort.abort(), { once: true });
  const res = await callUpstream({ url: `${target.origin}${path}`, method: c.req.method, headers, body, dispatcher: target.agent, signal: upstreamAbort.signal });
  if (res.statusCode === 401) {
    // The cluster refused airlock's own identity: not the agent's fault, and kubectl must
    // not read it as "your credentials are wrong".
    discard(res.body);
    up.tokens.clear();
    throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `cluster "${call.resource.cluster}" did not accept airlock's AWS identity (401): check its EKS access entry`);
  }
  try {
    await recordAnswer(call, res.statusCode, res.statusCode >= 500 ? 'error' : 'ok');
  } catch (e) {
    discard(res.body);
    throw e;
  }
  if (!call.session) return plainResponse(c.req.method, res);
  return sessionStreamResponse(res, call.session, { farewell: farewellFor(call.verb, res.headers) }, () => upstreamAbort.abort());
}

/** The last words of a cut stream: a watch ERROR event (JSON watches) or a log line. */
function farewellFor(verb: string, headers: Record<string, string | string[] | undefined>) {
  // A last event can be appended only to an uncompressed JSON watch stream.
  const isJson = /json/.test(String(headers['content-type'] ?? '')) && !headers['content-encoding'];
  return (reason: string, message: string): Uint8Array | undefined => {
    const text = `${message.startsWith('airlock') ? '' : 'airlock: '}${message} (${reason})`;
    if (verb === 'watch' && isJson) {
      const code = reason === 'shutdown' ? 503 : 401;
      const event = { type: 'ERROR', object: kubeStatus(code, code === 503 ? 'ServiceUnavailable' : 'Unauthorized', text) };
      return new TextEncoder().encode(`${JSON.stringify(event)}\n`);
    }
    return verb === 'watch' ? undefined : new TextEncoder().encode(`\n${text}\n`);
  };
}
