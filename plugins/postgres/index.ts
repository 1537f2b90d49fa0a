/**
 * The Postgres plugin: agents connect with psql, libpq or any driver, user = grant id and
 * password = grant secret (SCRAM-SHA-256); airlock logs in upstream as the access level's
 * database user (RDS IAM token or configured password), relays the wire protocol, records
 * every statement, and ends the session when the grant ends.
 */
import { definePlugin } from '../../core/plugin.ts';
import { postgresListenerSchema, postgresResourceSchema, postgresScopeSchema, type PostgresListenerConfig, type PostgresResource, type PostgresScope } from './config.ts';
import { startListener } from './listener.ts';
import { loadStatementParser } from './split-statements.ts';
import { resolvePostgresScope } from './provision/scope.ts';
import { DEFAULT_ROLE_CONNECTION_LIMIT, startGrantRoles } from './provision/start-grant-roles.ts';
import { postgresTools } from './tools.ts';
import { readUpstreamSecrets } from './upstream-secrets.ts';

export default definePlugin<PostgresResource, PostgresScope, PostgresListenerConfig>({
  type: 'postgres',
  credentials: ['scram'],
  resourceSchema: postgresResourceSchema,
  scopeSchema: postgresScopeSchema,
  listenerSchema: postgresListenerSchema,

  accessLevels: (resource) => [...Object.keys(resource.access), ...Object.keys(resource.provisioned)],

  resolveScope: (resource, access, requested) => ({ ...resolvePostgresScope(resource, access, requested) }),

  // RDS IAM tokens are presigned in the resource's region.
  awsBinding: (resource) => ({ region: resource.region }),

  start: async (ctx) => {
    await loadStatementParser();
    // Read once, before anything starts: a missing password variable fails the start.
    const secrets = readUpstreamSecrets(ctx.resources);
    // One set of per-grant roles and secrets for both ways in (the wire listener and the MCP tool).
    const roles = await startGrantRoles(ctx);
    try {
      const listener = await startListener(ctx, roles, secrets);
      return {
        ...listener,
        tools: postgresTools(ctx, roles, secrets),
        onGrantActive: (grant) => roles.onGrantActive(grant, { connectionLimit: DEFAULT_ROLE_CONNECTION_LIMIT }),
        onGrantEnded: (grant, reason) => roles.onGrantEnded(grant, reason),
        async close() {
          await listener.close();
          await roles.close();
        },
      };
    } catch (e) {
      await roles.close();
      throw e;
    }
  },
});
