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
import { attributes, forbiddenMessage, MAX_RECORDED_QUERY } from './attributes.ts';
import type { EksCall, InspectedCall, RoutedCall } from './call.ts';
import type { EksResource, EksScope } from './config.ts';
import { impersonationHeaders } from './headers.ts';
import { MOUNT_PREFIX } from './kubeconfig.ts';
import { answerStatus, refuse } from './refusals.ts';
import { requestInfo, type RequestInfo } from './request-info.ts';
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

/**
 * Stage 1: `/eks/<resource>/<kubernetes path>`. Whether `<resource>` is configured is not
 * told here: a name that is not is answered exactly like a credential that does not fit
 * (stage 2), so nobody learns which clusters exist without a grant for one.
 */
export function route(ctx: Ctx, c: Context): RoutedCall | Response {
  const url = new URL(c.req.url);
  const m = new RegExp(`^${MOUNT_PREFIX}/([^/]+)(/.*)?$`).exec(url.pathname);
  if (!m) return statusResponse(kubeStatus(404, 'NotFound', 'airlock: use the server URL of your grant\'s kubeconfig'));
  let resourceName = '';
  try {
    resourceName = decodeURIComponent(m[1]!);
  } catch {
    // not a name any resource has: refused like any unknown one
  }
  const resource = ctx.resources.get(resourceName);
  return { c, started: performance.now(), resourceName, resource, k8sPath: m[2] ?? '/', rawQuery: url.search.slice(1), source: sourceOf(c) };
}

/** Every credential failure answers this, whatever the cause (which the audit keeps). */
const UNAUTHORIZED = kubeStatus(401, 'Unauthorized', 'airlock: Unauthorized: the credential is not valid for this resource (use the kubeconfig from your grant)');
/** Causes that must not be told apart: unknown grant, wrong secret, another type's or resource's grant, unknown resource. */
const UNTOLD: ReadonlySet<string> = new Set([ErrorCodes.GRANT_UNKNOWN, ErrorCodes.BAD_CREDENTIAL, ErrorCodes.WRONG_RESOURCE, ErrorCodes.GRANT_NOT_FOUND]);

/** Stage 2: the grant as bearer token, for this resource. Failures record `auth.failed`. */
export async function authenticate(ctx: Ctx, call: RoutedCall): Promise<{ grant: Grant<EksScope>; call: EksCall } | Response> {
  const { c } = call;
  const token = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
  try {
    if (!token) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'no bearer token');
    const grant = ctx.grants.bearer(token);
    const resource = call.resource;
    if (resource === undefined || grant.resource !== call.resourceName) {
      throw new AirlockError(ErrorCodes.WRONG_RESOURCE, resource === undefined ? `no eks resource named "${call.resourceName}"` : `the grant is for resource "${grant.resource}", not "${call.resourceName}"`);
    }
    return { grant, call: { ...call, resource } };
  } catch (e) {
    const code = isAirlockError(e) ? e.code : ErrorCodes.INTERNAL;
    const { limited, receipt } = ctx.audit.authRefused({
      resource: call.resourceName,
      claimedId: token?.split('.')[0],
      source: call.source,
      code,
      reason: isAirlockError(e) ? e.message : 'internal error',
      data: { method: c.req.method, path: call.k8sPath, configured: call.resource !== undefined },
    });
    await receipt.durable.catch(() => {});
    if (limited) return answerStatus(c, kubeStatus(429, 'TooManyRequests', 'airlock: too many failed authentications from this address; try again later'));
    return answerStatus(c, UNTOLD.has(code) || !isAirlockError(e) ? UNAUTHORIZED : statusForError(e));
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
    // Recorded whole or not at all: beyond the bound the request is refused, never cut.
    if (rawQuery.length > MAX_RECORDED_QUERY) throw new AirlockError(ErrorCodes.TOO_LARGE, `the query string is longer than ${MAX_RECORDED_QUERY} characters, more than airlock records`);
    info = requestInfo(c.req.method, call.k8sPath, new URLSearchParams(rawQuery));
  } catch (e) {
    const code = isAirlockError(e) ? e.code : ErrorCodes.INTERNAL;
    const attrs = { method: c.req.method, path: call.k8sPath, ...(rawQuery ? { query: rawQuery.length > MAX_RECORDED_QUERY ? `(${rawQuery.length} characters, not recorded)` : rawQuery } : {}) };
    return refuse(ctx.audit, c, { grant, attrs, code, status: statusForError(e), violation: { reason: (e as Error).message } });
  }
  const verb = authorizationVerb(info, websocket);
  const query = new URLSearchParams(rawQuery);
  const attrs = attributes(info, verb, query, rawQuery);

  const impersonation = impersonationHeaders(c.req.raw.headers);
  if (impersonation.length > 0) {
    const names = impersonation.map((i) => i.header);
    const message = `airlock: impersonation is not allowed (${names.join(', ')}): requests run as grant ${grant.id}, with its scope only`;
    // The record keeps who was asked for, not only which header asked.
    const asked = Object.fromEntries(impersonation.map((i) => [i.header, i.value]));
    return refuse(ctx.audit, c, { grant, attrs: { ...attrs, impersonate: JSON.stringify(asked) }, code: ErrorCodes.FORBIDDEN, status: kubeStatus(403, 'Forbidden', message), violation: { impersonation: names, impersonate: asked, reason: 'impersonation headers' } });
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
  // Whatever can run long is a session of the grant, so expiry and revocation end it: logs
  // with or without follow (a non-follow log can be gigabytes), watches, lists, proxies.
  const streaming = websocket || verb === 'watch' || verb === 'list' || verb === 'proxy' || info.subresource === 'proxy' || info.subresource === 'log';
  return { ...call, grant, info, verb, attrs, query, websocket, streaming };
}
