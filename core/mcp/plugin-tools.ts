/**
 * Plugin tools behind the host's checks. For every call: the grant named by `grant_id` is
 * the caller's, active and of the tool's plugin type; the plugin gets a signal that fires
 * when the grant ends (a revocation cuts a running call) and the row/byte caps.
 */
import { z } from 'zod';
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { Grant, StartedPlugin, ToolContribution } from '../plugin.ts';
import type { GrantService } from '../grants/service.ts';
import type { GrantWatch } from './grant-watch.ts';
import type { HostTool } from './grant-tools.ts';
import { ownGrant } from './grant-tools.ts';
import { DATA_WARNING, errorResult, fromToolResult } from './results.ts';

export interface ToolLimits {
  /** Rows a tool returns at most (a caller may ask for fewer). */
  maxRows: number;
  /** Bytes of result data a tool returns at most. */
  maxBytes: number;
}

export const DEFAULT_TOOL_LIMITS: ToolLimits = { maxRows: 1000, maxBytes: 256 * 1024 };

export function pluginTools(plugins: readonly StartedPlugin[], grants: GrantService, watch: GrantWatch, limits: ToolLimits): HostTool[] {
  const out: HostTool[] = [];
  for (const plugin of plugins) {
    for (const tool of plugin.tools) out.push(hosted(plugin.type, tool, grants, watch, limits));
  }
  return out;
}

function hosted(type: string, tool: ToolContribution, grants: GrantService, watch: GrantWatch, limits: ToolLimits): HostTool {
  const inputSchema = tool.inputSchema.extend({ grant_id: z.string().min(1).max(64).describe(`id of your active ${type} grant (request_grant)`) });
  return {
    name: tool.name,
    description: `${tool.description} ${DATA_WARNING}`,
    inputSchema,
    async run(identity, input, outer) {
      const grant = usableGrant(grants, identity.agent, String(input.grant_id), type);
      const { grant_id: _id, ...rest } = input;
      const { signal, release } = watch.callSignal(grant.id, outer);
      try {
        const result = await tool.run({ grant, signal, limits }, rest);
        // A call the grant's end cut may still resolve: say why rather than hand on a partial answer.
        if (signal.aborted) return errorResult(signal.reason);
        return fromToolResult(tool.name, grant.id, grant.resource, result);
      } catch (e) {
        return errorResult(signal.aborted ? signal.reason : e);
      } finally {
        release();
      }
    },
  };
}

/** The caller's own active grant of this type; anything else is refused with a reason. */
function usableGrant(grants: GrantService, agent: string, id: string, type: string): Grant {
  ownGrant(grants, { agent, admin: false }, id);
  const grant = grants.requireActive(id);
  if (grant.resourceType !== type) throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${id} is for ${grant.resourceType} resource "${grant.resource}", not a ${type} resource`);
  return grant;
}
