/**
 * The MCP tools of airlock itself: identity, discovery and the caller's own grant cycle.
 * Admin actions (approve, deny, other agents' grants) are never tools: an agent that can
 * talk MCP must not be able to widen its own access.
 */
import { z } from 'zod';
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { AirlockConfig } from '../config/schema.ts';
import type { RegisteredPlugin } from '../plugin.ts';
import type { Identity } from '../identity/verifier.ts';
import type { GrantService, PublicGrant } from '../grants/service.ts';
import { allowedResources } from './discovery.ts';
import type { GrantWatch } from './grant-watch.ts';
import { ok, type CallResult } from './results.ts';

/** `grant_status` waits at most this long (SPEC: up to 60 s). */
export const MAX_WAIT_SECONDS = 60;

export interface GrantToolDeps {
  config: AirlockConfig;
  plugins: ReadonlyMap<string, RegisteredPlugin>;
  grants: GrantService;
  watch: GrantWatch;
}

export interface HostTool {
  name: string;
  description: string;
  inputSchema: z.ZodObject;
  /** What `mcp.call` records of this call besides the tool and arguments. */
  run(identity: Identity, input: Record<string, unknown>, signal: AbortSignal): Promise<CallResult>;
}

/** The caller's own grant, or GRANT_NOT_FOUND (another agent's grant does not exist for it). */
export function ownGrant(grants: GrantService, identity: Identity, id: string): PublicGrant {
  const g = grants.publicView(id);
  if (!g || g.agent !== identity.agent) throw new AirlockError(ErrorCodes.GRANT_NOT_FOUND, `grant ${id} not found among your grants`);
  return g;
}

function describeGrant(g: PublicGrant): string {
  const until = g.expiresAt ? `, expires ${g.expiresAt}` : '';
  return `grant ${g.id}: ${g.status}, ${g.access} on ${g.resource}${until}`;
}

const grantId = z.string().min(1).max(64).describe('the grant id (from request_grant or list_grants)');

export function grantTools(deps: GrantToolDeps): HostTool[] {
  const { grants, watch } = deps;
  return [
    {
      name: 'whoami',
      description: 'Your identity as airlock sees it (the agent name grants are bound to).',
      inputSchema: z.object({}),
      run: async (identity) => ok({ agent: identity.agent }, `you are ${identity.agent}`),
    },
    {
      name: 'list_resources',
      description: 'Resources you may request grants for, with each access level, its longest TTL (maxTtl) and whether an admin must approve.',
      inputSchema: z.object({}),
      run: async (identity) => {
        const resources = allowedResources(deps.config, deps.plugins, identity.agent);
        const lines = resources.flatMap((r) => r.access.map((a) => `${r.resource} (${r.type}) ${a.access}: up to ${a.maxTtl}, approval ${a.approval}${a.withoutApprovalUpTo ? ` (none up to ${a.withoutApprovalUpTo})` : ''}`));
        return ok({ resources }, lines.length ? lines.join('\n') : 'no policy allows you any resource');
      },
    },
    {
      name: 'request_grant',
      description:
        'Ask for a short grant on a resource for one task. Returns the grant id and status (active, or pending until an admin approves: then wait with grant_status). No secret is returned or exists: use the grant with the resource tools (query_postgres, call_dynamodb, ...).',
      inputSchema: z.object({
        resource: z.string().describe('resource name from list_resources'),
        access: z.string().describe('access level from list_resources'),
        ttl: z.string().describe('how long, e.g. 15m (at most the level\'s maxTtl)'),
        task: z.string().describe('why: the task this grant is for (recorded, shown to approvers)'),
        scope: z.record(z.string(), z.unknown()).optional().describe('optional narrowing, e.g. {"tables": ["orders"]}'),
      }),
      run: async (identity, input) => {
        const issued = await grants.request(identity.agent, input, { secretless: true });
        return ok({ grant: issued.body }, describeGrant(issued.body) + (issued.body.status === 'pending' ? ' (waiting for approval: call grant_status with wait_seconds)' : ''));
      },
    },
    {
      name: 'grant_status',
      description: `The state of one of your grants. With wait_seconds (up to ${MAX_WAIT_SECONDS}), waits while it is pending for an approval, a denial or any change.`,
      inputSchema: z.object({ grant_id: grantId, wait_seconds: z.number().min(0).max(MAX_WAIT_SECONDS).optional() }),
      run: async (identity, input, signal) => {
        const id = String(input.grant_id);
        let g = ownGrant(grants, identity, id);
        const waitMs = Math.min(Number(input.wait_seconds ?? 0), MAX_WAIT_SECONDS) * 1000;
        const deadline = Date.now() + waitMs;
        while (g.status === 'pending' && Date.now() < deadline && !signal.aborted) {
          await watch.nextChange(id, deadline - Date.now(), signal);
          g = ownGrant(grants, identity, id);
        }
        return ok({ grant: g }, describeGrant(g));
      },
    },
    {
      name: 'list_grants',
      description: 'Your grants (all states), newest last.',
      inputSchema: z.object({}),
      run: async (identity) => {
        const list = grants.list(identity.agent);
        return ok({ grants: list }, list.length ? list.map(describeGrant).join('\n') : 'you have no grants');
      },
    },
    {
      name: 'revoke_grant',
      description: 'End one of your grants now (when the task is done). Running calls on it are cut.',
      inputSchema: z.object({ grant_id: grantId }),
      run: async (identity, input) => {
        const g = ownGrant(grants, identity, String(input.grant_id));
        const revoked = await grants.revoke(g.id, identity.agent);
        return ok({ grant: revoked }, describeGrant(revoked));
      },
    },
  ];
}
