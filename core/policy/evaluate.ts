/**
 * Deny by default. A grant request is allowed when one policy matches the agent (globs),
 * the resource and the access level and its `maxTtl` covers the TTL. The reason for a
 * denial names the closest rule, so an agent (and its operator) can tell what to change.
 */
import type { PolicyConfig } from '../config/schema.ts';
import { formatDuration, parseDuration } from '../config/duration.ts';
import { globMatch } from './glob.ts';

export interface PolicyRequest {
  agent: string;
  resource: string;
  access: string;
  ttlMs: number;
}

export type PolicyDecision =
  | { allowed: true; policyIndex: number; approval: 'none' | 'required' }
  | { allowed: false; rule: string; reason: string };

export function evaluatePolicy(policies: readonly PolicyConfig[], req: PolicyRequest): PolicyDecision {
  let ttlDenial: PolicyDecision | undefined;
  let best: { index: number; approval: 'none' | 'required' } | undefined;
  policies.forEach((p, index) => {
    if (!p.agents.some((g) => globMatch(g, req.agent))) return;
    if (!p.resources.some((g) => globMatch(g, req.resource))) return;
    if (!p.access.some((g) => globMatch(g, req.access))) return;
    const max = parseDuration(p.maxTtl) ?? 0;
    if (req.ttlMs > max) {
      ttlDenial ??= { allowed: false, rule: `policies[${index}].maxTtl`, reason: `ttl ${formatDuration(req.ttlMs)} exceeds maxTtl ${p.maxTtl} of policies[${index}]` };
      return;
    }
    // Prefer a policy that needs no approval when several match.
    if (!best || (best.approval === 'required' && p.approval === 'none')) best = { index, approval: p.approval };
  });
  if (best) return { allowed: true, policyIndex: best.index, approval: best.approval };
  return ttlDenial ?? {
    allowed: false,
    rule: 'default-deny',
    reason: `no policy allows ${req.agent} access "${req.access}" on resource "${req.resource}"`,
  };
}
