/**
 * One MCP server instance per HTTP request (the SDK's stateless serving: no MCP session
 * lives on a replica, so any replica answers any request). Each tool call is recorded as
 * `mcp.call` (tool, arguments with secret-looking keys masked, outcome, ms) beside the
 * records of what it ran.
 */
import { McpServer, type McpRequestContext } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import type { Recorder } from '../audit/recorder.ts';
import { auditUnavailable } from '../errors.ts';
import type { GrantService } from '../grants/service.ts';
import type { Identity } from '../identity/verifier.ts';
import type { Grant } from '../plugin.ts';
import type { HostTool } from './grant-tools.ts';
import { errorResult, recordedArguments, type CallResult } from './results.ts';

export const SERVER_INFO = { name: 'airlock', version: '0.1.0' };

/** The identity the HTTP layer verified, carried to the factory in `authInfo.extra`. */
export function identityOf(ctx: McpRequestContext): Identity | undefined {
  const extra = ctx.authInfo?.extra;
  return typeof extra?.agent === 'string' ? { agent: extra.agent, admin: extra.admin === true } : undefined;
}

export interface ServerParts {
  tools: () => readonly HostTool[];
  recorder: Recorder;
  grants: GrantService;
  log: Logger;
}

export function buildServer(parts: ServerParts, identity: Identity): McpServer {
  const server = new McpServer(SERVER_INFO, { instructions: 'airlock: request a grant for a task (request_grant), use it with the resource tools, revoke it when done. No secret ever reaches you.' });
  for (const tool of parts.tools()) {
    server.registerTool(tool.name, { description: tool.description, inputSchema: tool.inputSchema }, async (args: Record<string, unknown>, ctx) => {
      return audited(parts, identity, tool, args, ctx.mcpReq.signal);
    });
  }
  return server;
}

async function audited(parts: ServerParts, identity: Identity, tool: HostTool, args: Record<string, unknown>, signal: AbortSignal): Promise<CallResult> {
  const started = performance.now();
  let result: CallResult;
  try {
    result = await tool.run(identity, args, signal);
  } catch (e) {
    result = errorResult(e);
  }
  const ms = Math.round((performance.now() - started) * 1000) / 1000;
  const error = result.isError ? (result.structuredContent.error as Record<string, unknown> | undefined) : undefined;
  const receipt = parts.recorder.record({
    type: 'mcp.call',
    agent: identity.agent,
    grant: callGrant(parts.grants, identity, args),
    outcome: error ? (error.code === 'INTERNAL' || error.code === 'UPSTREAM_FAILED' ? 'error' : 'denied') : 'ok',
    data: { tool: tool.name, arguments: recordedArguments(args), ms, ...(error ? { code: error.code, reason: error.message } : {}) },
  });
  try {
    await receipt.durable;
  } catch (e) {
    parts.log.error({ err: (e as Error).message, tool: tool.name }, 'cannot record mcp.call');
    return errorResult(auditUnavailable(e));
  }
  return result;
}

/** The grant a call named, when it is the caller's (fills grant and resource of the record). */
function callGrant(grants: GrantService, identity: Identity, args: Record<string, unknown>): Grant | undefined {
  const id = args.grant_id;
  if (typeof id !== 'string') return undefined;
  const g = grants.view(id);
  return g && g.agent === identity.agent ? g : undefined;
}
