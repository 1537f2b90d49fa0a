/**
 * Whom a session of a grant logs in upstream as, and whether the SELECT-only guardrail rules
 * apply: one answer for the wire path (stages/check-access.ts) and the MCP tool (tools.ts),
 * so a grant reaches the database as the same role whichever way the agent comes.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { Grant } from '../../core/plugin.ts';
import type { PostgresResource, PostgresScope } from './config.ts';
import { isSelectOnly } from './guard/index.ts';
import type { GrantRoles } from './provision/grant-roles.ts';

/** Whom a session logs in upstream as. */
export type UpstreamLogin =
  /** A static level's long-lived role: password from the level's variable, or an IAM token. */
  | { readonly kind: 'static'; readonly user: string }
  /** The grant's own role: its random password (undefined under RDS IAM: a token for the role). */
  | { readonly kind: 'provisioned'; readonly user: string; readonly password: string | undefined };

export interface GrantLogin {
  readonly login: UpstreamLogin;
  /** The SELECT-only guardrail rules apply (a SELECT-only provisioned level, or a static level with readOnly). */
  readonly readOnly: boolean;
}

/** Throws an AirlockError when the grant's level is gone or its role is not ready (fail closed). */
export async function loginOf(resource: PostgresResource, grant: Grant<PostgresScope>, roles: GrantRoles, warn: (message: string, err: unknown) => void): Promise<GrantLogin> {
  const level = Object.hasOwn(resource.access, grant.access) ? resource.access[grant.access] : undefined;
  if (level) return { login: { kind: 'static', user: level.user }, readOnly: level.readOnly === true };
  const provisioned = Object.hasOwn(resource.provisioned, grant.access) ? resource.provisioned[grant.access] : undefined;
  if (!provisioned) throw new AirlockError(ErrorCodes.GRANT_DENIED, `access level "${grant.access}" no longer exists on ${grant.resource}`);
  let role: Awaited<ReturnType<GrantRoles['credentials']>>;
  try {
    role = await roles.credentials(grant);
  } catch (e) {
    warn('the database role of a grant could not be looked up', e);
    role = undefined;
  }
  // Without its own role a provisioned grant has nobody to log in as.
  if (!role) throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `the database role of grant ${grant.id} is not ready on this gateway`);
  return { login: { kind: 'provisioned', user: role.role, password: role.password }, readOnly: isSelectOnly(provisioned.privileges) };
}
