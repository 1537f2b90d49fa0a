/**
 * `<publicUrl>/mcp`: MCP over Streamable HTTP for agents, as an OAuth 2.1 resource server.
 *
 * SDK choice: `@modelcontextprotocol/server` 2.x via `createMcpHandler` (decided on protocol
 * coverage; a side-by-side latency run against the 1.x transport is still to do, see the
 * report; bench/mcp/query.ts shows the per-call cost is the upstream session, not the SDK). It serves the 2026-07-28 per-request revision natively and the
 * 2025 revisions through its stateless legacy leg from one factory, so one endpoint
 * interoperates with both client lines without any server-side MCP session (any replica can
 * answer any request). The 1.x `WebStandardStreamableHTTPServerTransport` knows revisions
 * only up to 2025-11-25: a 2.x client would have to fall back. Both are fetch-shaped, so
 * Hono needs no adapter beyond handing over `c.req.raw`.
 *
 * Every request, in order: Origin (foreign → 403) → bearer JWT with the control API's
 * verifier (else 401 + `WWW-Authenticate … resource_metadata=…`) → per-agent rate limit
 * (429) → body cap (413, in the SDK before parsing) → the MCP handler.
 */
import { Hono, type Context } from 'hono';
import { createMcpHandler } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import { ErrorCodes } from '../errors.ts';
import type { AirlockConfig } from '../config/schema.ts';
import type { Recorder } from '../audit/recorder.ts';
import type { GrantService } from '../grants/service.ts';
import type { GrantEvents } from '../grants/events.ts';
import { IdentityError, type Identity, type IdentityVerifier } from '../identity/verifier.ts';
import type { RegisteredPlugin, StartedPlugin } from '../plugin.ts';
import { sourceOf } from '../api/auth.ts';
import { grantTools, type HostTool } from './grant-tools.ts';
import { GrantWatch } from './grant-watch.ts';
import { metadataUrl, MCP_PATH, METADATA_PATH, protectedResourceMetadata } from './metadata.ts';
import { DEFAULT_TOOL_LIMITS, pluginTools, type ToolLimits } from './plugin-tools.ts';
import { SlidingWindow } from '../audit/failure-limiter.ts';
import { buildServer, identityOf } from './server.ts';

/** Largest JSON-RPC request body (a query with parameters, a DynamoDB item). */
export const MAX_MCP_BODY_BYTES = 1024 * 1024;
/**
 * Requests per agent per minute at `/mcp`; over it, 429 with Retry-After. Per replica (a
 * shared store would make it global, at the cost of a round trip per request).
 */
export const MCP_REQUESTS_PER_MINUTE = 600;

export interface McpParts {
  config: AirlockConfig;
  publicUrl: string;
  gatewayId: string;
  verifier: IdentityVerifier;
  recorder: Recorder;
  grants: GrantService;
  events: GrantEvents;
  /** Registered plugins by type (access levels for list_resources). */
  plugins: ReadonlyMap<string, RegisteredPlugin>;
  /** The started plugins (their tools); read per request, so plugins may start after mounting. */
  started: () => readonly StartedPlugin[];
  log: Logger;
  limits?: ToolLimits;
  requestsPerMinute?: number;
}

export interface McpHost {
  app: Hono;
  close(): Promise<void>;
}

export function mcpHost(parts: McpParts): McpHost {
  const log = parts.log.child({ part: 'mcp' });
  const watch = new GrantWatch(parts.events);
  const own = grantTools({ config: parts.config, plugins: parts.plugins, grants: parts.grants, watch });
  const limits = parts.limits ?? DEFAULT_TOOL_LIMITS;
  const tools = (): HostTool[] => [...own, ...pluginTools(parts.started(), parts.grants, watch, limits)];
  const handler = createMcpHandler(
    (ctx) => {
      const identity = identityOf(ctx);
      // The HTTP layer verified the token before the handler runs; without one, nothing is served.
      if (!identity) throw new Error('MCP request without a verified identity');
      return buildServer({ tools, recorder: parts.recorder, grants: parts.grants, log }, identity);
    },
    { legacy: 'stateless', maxRequestBodySize: MAX_MCP_BODY_BYTES, onerror: (err) => log.debug({ err: err.message }, 'mcp request rejected') },
  );
  const gate = requestGate(parts, log);
  const metadata = protectedResourceMetadata(parts.config, parts.publicUrl, parts.gatewayId);

  const app = new Hono();
  app.get(METADATA_PATH, (c) => c.json(metadata, 200, { 'access-control-allow-origin': '*' }));
  app.all(MCP_PATH, async (c) => {
    const admitted = await gate(c);
    if (admitted instanceof Response) return admitted;
    return handler.fetch(c.req.raw, { authInfo: { token: 'verified', clientId: admitted.agent, scopes: [], extra: { agent: admitted.agent, admin: admitted.admin } } });
  });
  return {
    app,
    close: async () => {
      watch.close();
      await handler.close();
    },
  };
}

/** Origin, identity, rate: the identity when admitted, else the refusal to send. */
function requestGate(parts: McpParts, log: Logger): (c: Context) => Promise<Identity | Response> {
  const ownOrigin = new URL(parts.publicUrl).origin;
  const challenge = metadataUrl(parts.publicUrl);
  const rate = new SlidingWindow(parts.requestsPerMinute ?? MCP_REQUESTS_PER_MINUTE, 60_000);
  const unauthorized = (reason: string, error?: string) =>
    Response.json(
      { error: error ?? 'invalid_request', error_description: reason },
      { status: 401, headers: { 'www-authenticate': `Bearer ${error ? `error="${error}", ` : ''}resource_metadata="${challenge}"`, 'cache-control': 'no-store' } },
    );
  return async (c) => {
    const source = sourceOf(c);
    const origin = c.req.header('origin');
    if (origin !== undefined && origin !== ownOrigin) {
      parts.recorder.record({ type: 'api.rejected', outcome: 'denied', data: { path: MCP_PATH, reason: 'foreign Origin', origin: origin.slice(0, 256), source } });
      return Response.json({ error: 'forbidden', error_description: `Origin ${origin.slice(0, 256)} is not this gateway's (${ownOrigin})` }, { status: 403 });
    }
    const token = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    // Failures are limited per address (gateway-wide, in the recorder); a token that
    // verifies is never refused for its address.
    const fail = (reason: string, error?: string) => {
      const { limited } = parts.recorder.authRefused({ source, code: ErrorCodes.BAD_IDENTITY, reason, data: { path: MCP_PATH } });
      if (limited) return Response.json({ error: 'too many failed authentications; try again later' }, { status: 429, headers: { 'retry-after': '60' } });
      return unauthorized(reason, error);
    };
    if (!token) return fail('missing bearer token');
    let identity: Identity;
    try {
      identity = await parts.verifier.verify(token);
    } catch (e) {
      if (e instanceof IdentityError) return fail(e.message, 'invalid_token');
      log.error({ err: (e as Error).message }, 'token verification failed');
      return Response.json({ error: 'server_error' }, { status: 500 });
    }
    if (!rate.take(identity.agent)) {
      parts.recorder.record({ type: 'api.rejected', agent: identity.agent, outcome: 'denied', data: { path: MCP_PATH, reason: 'rate limit', source } });
      return Response.json({ error: 'rate_limited', error_description: 'too many MCP requests; slow down' }, { status: 429, headers: { 'retry-after': '60' } });
    }
    return identity;
  };
}
