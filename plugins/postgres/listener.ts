/**
 * The TCP listener of the Postgres plugin. Each connection is served independently by
 * `serveConnection`; a failure there ends that connection only. `close()` stops accepting,
 * then tears down whatever is still open (the core has already ended live sessions).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { ConnectInfo, Grant, PluginInstance } from '../../core/plugin.ts';
import type { GrantRoles } from './provision/grant-roles.ts';
import { CancelRegistry } from './cancel-registry.ts';
import { postgresListenerSchema, type PostgresContext, type PostgresListenerConfig, type PostgresScope } from './config.ts';
import { serveConnection } from './front-door.ts';
import type { UpstreamSecrets } from './upstream-secrets.ts';
import { formatHostPort, parseListen } from '../../core/public.ts';

async function secureContextFor(ctx: PostgresContext, listener: PostgresListenerConfig): Promise<SecureContext | null> {
  if (listener.tls === 'disable') return null;
  if (listener.tls === 'self-signed') {
    const material = await ctx.gateway.tls();
    return createSecureContext({ ...material, minVersion: 'TLSv1.2' });
  }
  return createSecureContext({ cert: readFileSync(listener.tls.cert), key: readFileSync(listener.tls.key), minVersion: 'TLSv1.2' });
}

/** The Postgres wire listener; the per-grant roles and upstream secrets are the plugin's (index.ts), shared with the MCP tool. */
export async function startListener(ctx: PostgresContext, roles: GrantRoles, secrets: UpstreamSecrets): Promise<PluginInstance<PostgresScope>> {
  const listener = ctx.listener ?? postgresListenerSchema.parse({});
  const secureContext = await secureContextFor(ctx, listener);
  const cancels = new CancelRegistry();
  const sockets = new Set<Socket>();
  const relays = new Set<Promise<void>>();

  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveConnection(socket, {
      ctx, listener, secureContext, cancels, secrets, roles,
      onRelay: (_relay, done) => {
        relays.add(done);
        void done.then(() => relays.delete(done));
      },
    }).catch((err: unknown) => {
      ctx.log.error({ err }, 'postgres connection handler failed');
      socket.destroy();
    });
  });
  server.on('error', (err) => ctx.log.error({ err }, 'postgres listener error'));

  const { host, port } = parseListen(listener.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const advertised = listener.advertise ? advertisedAddress(listener.advertise, actualPort) : { host: host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, port: actualPort };
  const display = formatHostPort(host, actualPort);
  ctx.log.info({ listen: display }, 'postgres listener started');

  return {
    listening: [display],
    connectInfo: ({ grant, secret }) => postgresConnectInfo({ ...advertised, tls: secureContext !== null }, grant, secret),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await Promise.race([Promise.all(relays), new Promise((r) => setTimeout(r, 1000).unref())]);
    },
  };
}

/** `host` or `host:port` (IPv6 in brackets); without a port, the listener's own. */
export function advertisedAddress(advertise: string, listenPort: number): { host: string; port: number } {
  return /:\d+$/.test(advertise) && !/^[^[]*:.*:/.test(advertise) ? parseListen(advertise) : { host: advertise.replace(/^\[|\]$/g, ''), port: listenPort };
}

/** `connect` of a Postgres grant: where the listener really is (port 0 resolved at start). */
export function postgresConnectInfo(at: { host: string; port: number; tls: boolean }, grant: Grant<PostgresScope>, secret: string): ConnectInfo {
  const sslmode = at.tls ? 'require' : 'disable';
  const urlHost = at.host.includes(':') ? `[${at.host}]` : at.host;
  const database = grant.scope.database;
  const url = `postgres://${encodeURIComponent(grant.id)}:${encodeURIComponent(secret)}@${urlHost}:${at.port}/${encodeURIComponent(database)}?sslmode=${sslmode}`;
  return {
    url,
    env: {
      PGHOST: at.host,
      PGPORT: String(at.port),
      PGUSER: grant.id,
      PGPASSWORD: secret,
      PGDATABASE: database,
      PGSSLMODE: sslmode,
      DATABASE_URL: url,
    },
  };
}
