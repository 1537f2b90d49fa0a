/**
 * Stage 3, checkAccess: the grant proved its secret; is it usable here, now? Active, for a
 * known resource, for the database the client named, with an access level that still exists,
 * and for a provisioned level, with its own database role made (provision/grant-roles.ts).
 * What comes out says whom the session logs in upstream as and which guardrails apply.
 */
import { AirlockError, ErrorCodes, isAirlockError } from '../../../core/errors.ts';
import type { Grant } from '../../../core/plugin.ts';
import type { PostgresContext, PostgresResource, PostgresScope } from '../config.ts';
import type { GrantRoles } from '../provision/grant-roles.ts';
import { loginOf, type UpstreamLogin } from '../login.ts';
import { Refusal } from './handshake.ts';

export type { UpstreamLogin };

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
  try {
    const { login, readOnly } = await loginOf(resource, grant, roles, (message, err) => ctx.log.warn({ err: (err as Error).message, grant: grant.id }, message));
    return { grant, resource, database, login, readOnly };
  } catch (e) {
    throw new Refusal(isAirlockError(e) ? e : new AirlockError(ErrorCodes.INTERNAL, 'grant check failed'), user, grant.resource);
  }
}
