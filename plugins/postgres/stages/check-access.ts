/**
 * Stage 3, checkAccess: the grant proved its secret; is it usable here, now? Active, for a
 * known resource, for the database the client named, with an access level that still exists.
 */
import { AirlockError, ErrorCodes, isAirlockError } from '../../../core/errors.ts';
import type { Grant } from '../../../core/plugin.ts';
import type { PostgresContext, PostgresResource, PostgresScope } from '../config.ts';
import { Refusal } from './handshake.ts';

export interface Access {
  grant: Grant<PostgresScope>;
  resource: PostgresResource;
  database: string;
  level: PostgresResource['access'][string];
}

export function checkAccess(ctx: PostgresContext, proved: Grant<PostgresScope>, user: string, params: ReadonlyMap<string, string>): Access {
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
  const level = resource.access[grant.access];
  if (!level) throw new Refusal(new AirlockError(ErrorCodes.GRANT_DENIED, `access level "${grant.access}" no longer exists on ${grant.resource}`), user, grant.resource);
  return { grant, resource, database, level };
}
