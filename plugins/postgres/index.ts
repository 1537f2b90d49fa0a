/**
 * The Postgres plugin: agents connect with psql, libpq or any driver, user = grant id and
 * password = grant secret (SCRAM-SHA-256); airlock logs in upstream as the access level's
 * database user (RDS IAM token or configured password), relays the wire protocol, records
 * every statement, and ends the session when the grant ends.
 */
import { definePlugin } from '../../core/plugin.ts';
import { postgresListenerSchema, postgresResourceSchema, type PostgresResource } from './config.ts';
import { advertisedAddress, listenAddresses, startListener } from './listener.ts';
import { parseListen } from '../../core/public.ts';
import { loadStatementParser } from './split-statements.ts';
import { resolvePostgresScope } from './provision/scope.ts';

export default definePlugin<PostgresResource>({
  type: 'postgres',
  credentials: ['scram'],
  resourceSchema: postgresResourceSchema,
  listenerSchema: postgresListenerSchema,

  accessLevels: (resource) => [...Object.keys(resource.access), ...Object.keys(resource.provisioned)],

  resolveScope: (resource, access, requested) => ({ ...resolvePostgresScope(resource, access, requested) }),

  connectInfo({ resource, grant, secret, gateway }) {
    const live = listenAddresses.get(gateway.gatewayId);
    let host = '127.0.0.1';
    let port = 6432;
    let tls = true;
    if (live) ({ host, port, tls } = live);
    else {
      const cfg = postgresListenerSchema.parse(gateway.listenerConfig ?? {});
      const listen = parseListen(cfg.listen);
      ({ host, port } = cfg.advertise ? advertisedAddress(cfg.advertise, listen.port) : listen);
      tls = cfg.tls !== 'disable';
    }
    const sslmode = tls ? 'require' : 'disable';
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const url = `postgres://${encodeURIComponent(grant.id)}:${encodeURIComponent(secret)}@${urlHost}:${port}/${encodeURIComponent(resource.database)}?sslmode=${sslmode}`;
    return {
      url,
      env: {
        PGHOST: host,
        PGPORT: String(port),
        PGUSER: grant.id,
        PGPASSWORD: secret,
        PGDATABASE: resource.database,
        PGSSLMODE: sslmode,
        DATABASE_URL: url,
      },
    };
  },

  start: async (ctx) => {
    await loadStatementParser();
    return startListener(ctx);
  },
});
