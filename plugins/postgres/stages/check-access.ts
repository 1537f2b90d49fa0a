/**
 * Stage 3, checkAccess: the grant proved its secret; is it usable here, now? Active, for a
 * known resource, for the database the client named, with an access level that still exists,
 * and for a provisioned level, with its own database role made (provision/grant-roles.ts).
 * What comes out says whom the session logs in upstream as and which guardrails apply.
 */
import { AirlockError, ErrorCodes, isAirlockError } from '../../../core/errors.ts';
import type { Grant } from '../../../core/plugin.ts';
import type { PostgresContext, PostgresResource, PostgresScope } from '../config.ts';
import { isSelectOnly } from '../guard/index.ts';
import type { GrantRoles } from '../provision/grant-roles.ts';
import { Refusal } from './handshake.ts';

/** Whom a session logs in upstream as. */
export type UpstreamLogin =
  /** A static level's long-lived role: password from the level's variable, or an IAM token. */
  | { readonly kind: 'static'; readonly user: string }
  /** The grant's own role: its random password (undefined under RDS IAM: a token for the role). */
  | { readonly kind: 'provisioned'; readonly user: string; readonly password: string | undefined };

export interface Access {
  grant: Grant<PostgresScope>;
  resource: PostgresResource;
  database: string;
  login: UpstreamLogin;
  /** The SELECT-only guardrail rules apply (a SELECT-only provisioned level, or a static level with readOnly). */
  readOnly: boolean;
}

export async function checkAccess(ctx: PostgresContext, roles: GrantRoles, proved: Grant<PostgresScope>, user: string, params: ReadonlyMap<string, string>): Promise<Access> {
  let grant: Grant<PostgresScope>;
  try {
    grant = ctx.grants.requireActive(proved.id);
  } catch (e) {
    throw new Refusal(isAirlockError(e) ? e : new AirlockError(ErrorCodes.INTERNAL, 'grant check failed'), user, proved.resource);
  }
  const resource = ctx.resources.get(grant.resource);
  if (!resource) throw new Refusal(new AirlockError(ErrorCodes.WRONG_RESOURCE, 'grant is for an unknown resource'), user, grant.resource);
  const database = params.get('database') || user;
  if (database !== resource.database) {
    throw new Refusal(new AirlockError(ErrorCodes.OUT_OF_SCOPE, `grant ${grant.id} is for database "${resource.database}", not "${database}"`), user, grant.resource);
  }
  const level = Object.hasOwn(resource.access, grant.access) ? resource.access[grant.access] : undefined;
  if (level) return { grant, resource, database, login: { kind: 'static', user: level.user }, readOnly: level.readOnly === true };
  const provisioned = Object.hasOwn(resource.provisioned, grant.access) ? resource.provisioned[grant.access] : undefined;
  if (!provisioned) throw new Refusal(new AirlockError(ErrorCodes.GRANT_DENIED, `access level "${grant.access}" no longer exists on ${grant.resource}`), user, grant.resource);
  let role: Awaited<ReturnType<GrantRoles['credentials']>>;
  try {
    role = await roles.credentials(grant);
  } catch (e) {
    ctx.log.warn({ err: (e as Error).message, grant: grant.id }, 'the database role of a grant could not be looked up');
    role = undefined;
  }
  // Fail closed: without its own role a provisioned grant has nobody to log in as.
  if (!role) throw new Refusal(new AirlockError(ErrorCodes.UPSTREAM_FAILED, `the database role of grant ${grant.id} is not ready on this gateway`), user, grant.resource);
  return { grant, resource, database, login: { kind: 'provisioned', user: role.role, password: role.password }, readOnly: isSelectOnly(provisioned.privileges) };
}
