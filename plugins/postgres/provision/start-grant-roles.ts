/**
 * The plugin's per-grant roles, started once for the wire listener and the MCP tool alike:
 * audit records of role changes, the shared directory other replicas read, and the start-up
 * sweep (every leftover `airlock_*` role whose grant is no longer active is dropped, so a
 * crash leaves nothing).
 */
import type { PostgresContext } from '../config.ts';
import { GrantRoles } from './grant-roles.ts';
import { sharedRoleDirectory } from './role-directory.ts';

/**
 * CONNECTION LIMIT of a grant role. A grant's live sessions are capped by the core at the
 * policy's maxSessions (default 10), which the plugin cannot see; the role takes that default.
 */
export const DEFAULT_ROLE_CONNECTION_LIMIT = 10;

export async function startGrantRoles(ctx: PostgresContext): Promise<GrantRoles> {
  const roles = new GrantRoles(ctx.resources, {
    env: process.env,
    aws: ctx.aws,
    defaultConnectionLimit: DEFAULT_ROLE_CONNECTION_LIMIT,
    directory: sharedRoleDirectory(ctx.state),
    record: (type, resource, data) => {
      const grantId = typeof data.grant === 'string' ? data.grant : undefined;
      const grant = grantId === undefined ? undefined : ctx.grants.get(grantId);
      // Nothing waits on it (receipts never reject unhandled): a record never holds back a drop.
      ctx.audit.record({ type, grant, resource, data, outcome: 'ok' });
    },
  });
  try {
    await roles.sweep(ctx.grants.listActive());
  } catch (e) {
    await roles.close();
    throw e;
  }
  return roles;
}
