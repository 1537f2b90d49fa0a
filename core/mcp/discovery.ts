/**
 * `list_resources`: what the caller's policies would allow, per resource and access level,
 * read from the same policies `evaluatePolicy` decides with (longest TTL, and up to which
 * TTL no approval is needed). It grants nothing; `request_grant` still decides.
 */
import type { AirlockConfig } from '../config/schema.ts';
import type { RegisteredPlugin } from '../plugin.ts';
import { globMatch } from '../policy/glob.ts';
import { formatDuration, parseDuration } from '../config/duration.ts';

export interface AllowedLevel {
  access: string;
  /** Longest TTL any matching policy allows. */
  maxTtl: string;
  /** `none` when some matching policy needs no approval (up to `withoutApprovalUpTo`). */
  approval: 'none' | 'required';
  withoutApprovalUpTo?: string;
}

export interface AllowedResource {
  resource: string;
  type: string;
  access: AllowedLevel[];
}

export function allowedResources(config: AirlockConfig, plugins: ReadonlyMap<string, RegisteredPlugin>, agent: string): AllowedResource[] {
  const out: AllowedResource[] = [];
  for (const [name, resource] of Object.entries(config.resources)) {
    const plugin = plugins.get(resource.type);
    if (!plugin) continue;
    const levels: AllowedLevel[] = [];
    for (const access of plugin.accessLevels(resource)) {
      const level = levelFor(config, agent, name, access);
      if (level) levels.push(level);
    }
    if (levels.length > 0) out.push({ resource: name, type: resource.type, access: levels });
  }
  return out;
}

function levelFor(config: AirlockConfig, agent: string, resource: string, access: string): AllowedLevel | undefined {
  let max = 0;
  let free = 0;
  for (const p of config.policies) {
    if (!p.agents.some((g) => globMatch(g, agent)) || !p.resources.some((g) => globMatch(g, resource)) || !p.access.some((g) => globMatch(g, access))) continue;
    const ttl = parseDuration(p.maxTtl) ?? 0;
    max = Math.max(max, ttl);
    if (p.approval === 'none') free = Math.max(free, ttl);
  }
  if (max === 0) return undefined;
  return { access, maxTtl: formatDuration(max), approval: free > 0 ? 'none' : 'required', ...(free > 0 && free < max ? { withoutApprovalUpTo: formatDuration(free) } : {}) };
}
