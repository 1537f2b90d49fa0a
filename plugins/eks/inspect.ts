/**
 * The first stages of an EKS request: route (which resource), authenticate (the grant as
 * bearer token), inspect (request attributes as the API server derives them, impersonation
 * refused, scope). Each returns the call for the next stage or the Response of a refusal,
 * which it has recorded.
 */
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { AirlockError, ErrorCodes, isAirlockError } from '../../core/errors.ts';
import type { Grant, PluginContext } from '../../core/plugin.ts';
import { attributes, forbiddenMessage } from './attributes.ts';
import type { EksCall, InspectedCall } from './call.ts';
import type { EksResource, EksScope } from './config.ts';
import { impersonationHeaders } from './headers.ts';
import { MOUNT_PREFIX } from './kubeconfig.ts';
import { answerStatus, refuse } from './refusals.ts';
import { queryBool, requestInfo, type RequestInfo } from './request-info.ts';
import { authorizationVerb, authorize } from './scope.ts';
import { kubeStatus, statusForError, statusResponse } from './status.ts';

type Ctx = PluginContext<EksResource, EksScope>;

function sourceOf(c: Context): string | undefined {
  try {
    const info = getConnInfo(c);
    return info.remote.address ? `${info.remote.address}:${info.remote.port ?? ''}` : undefined;
  } catch {
    return undefined;
  }
}

/** Stage 1: `/eks/<resource>/<kubernetes path>`; an unknown resource is a 404. */
export function route(ctx: Ctx, c: Context): EksCall | Response {
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
  return { c, started: performance.now(), resourceName, resource, k8sPath: m[2] ?? '/', rawQuery: url.search.slice(1), source: sourceOf(c) };
}

/** Stage 2: the grant as bearer token, for this resource. Failures record `auth.failed`. */
export async function authenticate(ctx: Ctx, call: EksCall): Promise<Grant<EksScope> | Response> {
  const { c } = call;
  const token = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
  try {
    if (!token) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'no bearer token: use the kubeconfig from your grant');
    const grant = ctx.grants.bearer(token);
    if (grant.resource !== call.resourceName) throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `the grant is for resource "${grant.resource}", not "${call.resourceName}"`);
    return grant;
  } catch (e) {
    const receipt = ctx.audit.authFailed({
      resource: call.resourceName,
      claimedId: token?.split('.')[0],
      source: call.source,
      code: isAirlockError(e) ? e.code : ErrorCodes.INTERNAL,
      reason: isAirlockError(e) ? e.message : 'internal error',
      data: { method: c.req.method, path: call.k8sPath },
    });
    await receipt.durable.catch(() => {});
    return answerStatus(c, isAirlockError(e) ? statusForError(e) : kubeStatus(401, 'Unauthorized', 'airlock: Unauthorized'));
  }
}

/** Stage 3: what is asked, and is it inside the grant. */
export async function inspect(ctx: Ctx, call: EksCall, grant: Grant<EksScope>): Promise<InspectedCall | Response> {
  const { c, rawQuery } = call;
  const upgrade = (c.req.header('upgrade') ?? '').toLowerCase();
  const websocket = upgrade === 'websocket';
  let info: RequestInfo;
  try {
    if (rawQuery.includes(';')) throw new AirlockError(ErrorCodes.BAD_REQUEST, 'a query with ";" is ambiguous (Go servers reject it)');
    info = requestInfo(c.req.method, call.k8sPath, new URLSearchParams(rawQuery));
  } catch (e) {
    const code = isAirlockError(e) ? e.code : ErrorCodes.INTERNAL;
    return refuse(ctx.audit, c, { grant, attrs: { method: c.req.method, path: call.k8sPath }, code, status: statusForError(e), violation: { reason: (e as Error).message } });
  }
  const verb = authorizationVerb(info, websocket);
  const query = new URLSearchParams(rawQuery);
  const attrs = attributes(info, verb, query, rawQuery);

  const impersonation = impersonationHeaders(c.req.raw.headers);
  if (impersonation.length > 0) {
    const message = `airlock: impersonation is not allowed (${impersonation.join(', ')}): requests run as grant ${grant.id}, with its scope only`;
    return refuse(ctx.audit, c, { grant, attrs, code: ErrorCodes.FORBIDDEN, status: kubeStatus(403, 'Forbidden', message), violation: { impersonation, reason: 'impersonation headers' } });
  }
  const decision = authorize(info, verb, grant.scope);
  if (!decision.allowed) {
    const message = forbiddenMessage(info, verb, grant, decision.missing ?? 'this request');
    const details = info.resource ? { name: info.name, group: info.apiGroup, kind: info.resource } : undefined;
    return refuse(ctx.audit, c, { grant, attrs, code: ErrorCodes.OUT_OF_SCOPE, status: kubeStatus(403, 'Forbidden', message, details), violation: { missing: decision.missing } });
  }
  if (upgrade && !websocket) {
    const message = `airlock: ${upgrade} upgrades are refused; airlock relays exec, attach and port-forward over WebSocket only (kubectl 1.30+ does this by default; unset KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false)`;
    return refuse(ctx.audit, c, { grant, attrs, code: ErrorCodes.BAD_REQUEST, status: kubeStatus(400, 'BadRequest', message), violation: undefined });
  }
  const streaming = websocket || verb === 'watch' || verb === 'proxy' || info.subresource === 'proxy' || (info.subresource === 'log' && queryBool(query, 'follow'));
  return { ...call, grant, info, verb, attrs, query, websocket, streaming };
}
