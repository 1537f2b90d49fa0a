/**
 * The hub: wires config, identity, audit, grants, sessions, the control API, plugins and
 * sinks into one running gateway. It holds no logic of its own; each part lives in its
 * folder. Data flows one way: agent → API → policy → grants → audit; client → plugin →
 * context → upstream; expiry/revocation → session registry → the plugin's closer.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Hono } from 'hono';
import pino, { type Logger } from 'pino';
import type { GatewayInfo, RegisteredPlugin, RegisteredSink } from './plugin.ts';
import type { AirlockConfig } from './config/schema.ts';
import { loadConfigFile, validateConfig } from './config/load.ts';
import { loadOrCreateGatewayIdentity, type GatewayIdentity } from './identity/gateway-key.ts';
import { IdentityVerifier } from './identity/verifier.ts';
import { AuditPipeline } from './audit/pipeline.ts';
import { createAwsLayer } from './aws/index.ts';
import { Recorder } from './gateway/recorder.ts';
import { FileGrantStore } from './grants/file-store.ts';
import { GrantService } from './grants/service.ts';
import { SessionRegistry } from './sessions/registry.ts';
import { controlApi } from './api/app.ts';
import { loadTlsMaterial, type TlsMaterial } from './tls/material.ts';
import { startHttpListener, type HttpListener } from './gateway/http-server.ts';
import { startPlugins } from './gateway/start-plugins.ts';
import { attachSinks } from './gateway/attach-sinks.ts';
import { gatewayMetrics } from './gateway/metrics.ts';
import { parseListen } from './gateway/listen.ts';
import { startConsole } from './console/index.ts';
import { startNotifications, type Notifications } from './notify/index.ts';

export interface GatewayOptions {
  configPath?: string;
  /** An already-parsed config object (tests, `airlock dev`); validated like a file. */
  config?: unknown;
  plugins: readonly RegisteredPlugin[];
  sinks: readonly RegisteredSink[];
  log?: Logger;
}

export interface Gateway {
  readonly url: string;
  readonly config: AirlockConfig;
  readonly identity: GatewayIdentity;
  readonly listening: Readonly<Record<string, readonly string[]>>;
  readonly grants: GrantService;
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.log ?? pino({ name: 'airlock' });
  const loadOpts = { plugins: options.plugins, sinks: options.sinks };
  const config = options.configPath ? loadConfigFile(options.configPath, loadOpts) : validateConfig(options.config ?? {}, '(config)', loadOpts);
  const dataDir = resolve(config.gateway.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const identity = await loadOrCreateGatewayIdentity(dataDir);
  const audit = await AuditPipeline.open({
    dataDir,
    durability: config.audit.durability,
    gatewayId: identity.gatewayId,
    checkpointEvery: config.audit.checkpointEvery,
    spoolMaxBytes: config.audit.spoolMaxBytes,
    signingKey: { privateKey: identity.key.privateKey, kid: identity.key.kid },
    log: log.child({ part: 'audit' }),
  });
  const recorder = new Recorder(audit);
  const auditAvailable = () => !audit.full;
  const aws = createAwsLayer({
    region: config.aws.region,
    endpoints: config.aws.endpoints,
    roles: new Map(Object.entries(config.resources).map(([name, r]) => [name, { roleArn: r.roleArn as string | undefined, region: r.region as string | undefined }])),
    log: log.child({ part: 'aws' }),
  });

  const byType = new Map(options.plugins.map((p) => [p.type, p]));
  const httpTls: TlsMaterial | undefined = config.gateway.http.tls
    ? await loadTlsMaterial(config.gateway.http.tls, dataDir, [configuredHost(config)])
    : undefined;
  let publicUrl = config.gateway.http.publicUrl;
  const gatewayInfo: GatewayInfo = {
    get publicUrl() {
      if (!publicUrl) throw new Error('gateway URL is not known before the HTTP listener starts');
      return publicUrl;
    },
    httpCaPem: httpTls?.certPem,
    dataDir,
    gatewayId: identity.gatewayId,
    listenerConfig: undefined,
    tls: () => loadTlsMaterial('self-signed', dataDir, [configuredHost(config)]),
  };

  const grantStore = new FileGrantStore(dataDir);
  const grants = new GrantService(config, byType, grantStore, recorder, () => gatewayInfo, auditAvailable);
  await grants.load();
  const sessions = new SessionRegistry(recorder, auditAvailable, (id) => grants.requireActive(id));
  grants.attachSessions(sessions);
  grants.onEnded((id) => aws.forgetGrant(id));

  let authFailures = 0;
  let notifications: Notifications | undefined;
  const verifier = new IdentityVerifier(config.identity.issuers, config.identity.admins, identity);
  const app = new Hono();
  app.route('/', controlApi({
    verifier,
    recorder,
    grants,
    sessions,
    jwks: () => ({ keys: [identity.key.publicJwk] }),
    metrics: () => [...gatewayMetrics(grants, sessions, audit, () => authFailures), ...(notifications?.metrics() ?? [])],
    healthy: () => ({ ok: !audit.full, detail: { gatewayId: identity.gatewayId, auditSpoolFull: audit.full, liveSessions: sessions.liveCount } }),
    onAuthFailure: () => void authFailures++,
    log,
  }));
  const consoleUi = startConsole({ publicUrl: () => gatewayInfo.publicUrl, grants, sessions, verifyToken: (t) => verifier.verify(t), issuers: config.identity.issuers, admins: config.identity.admins, recorder, log: log.child({ part: 'console' }), dataDir, gatewayId: identity.gatewayId, publicKeys: [identity.key.publicJwk] });
  app.route('/console', consoleUi.app);

  // Anything started below is stopped again if a later step fails.
  const stops: Array<() => Promise<void> | void> = [() => audit.close(), () => aws.close(), () => grantStore.close(), () => grants.close(), () => consoleUi.close()];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  let listening: Record<string, readonly string[]>;
  try {
    const plugins = await startPlugins({ plugins: options.plugins, config, gateway: gatewayInfo, grants, sessions, recorder, aws: (g) => aws.forPlugin(g), app, log });
    stops.push(() => plugins.close());
    listening = plugins.listening;
    const http: HttpListener = await startHttpListener(app, config.gateway.http.listen, httpTls);
    stops.push(() => http.close());
    publicUrl ??= http.url.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:');
    listening.http = [http.address];
    notifications = await startNotifications({ targets: config.notify, dataDir, gatewayId: identity.gatewayId, headSeq: () => audit.metrics().lastSeq, grant: (id) => grants.publicView(id), consoleBase: () => `${gatewayInfo.publicUrl}/console`, log });
    stops.push(() => notifications?.close());
    await attachSinks({ sinks: options.sinks, config, audit, context: { gatewayId: identity.gatewayId, dataDir, aws: aws.forSinks() }, log });
  } catch (e) {
    await stopAll();
    throw e;
  }

  log.info({ url: publicUrl, listening, gatewayId: identity.gatewayId }, 'airlock gateway started');
  let closing: Promise<void> | undefined;
  return {
    get url() {
      return gatewayInfo.publicUrl;
    },
    config,
    identity,
    listening,
    grants,
    close: () =>
      (closing ??= (async () => {
        // Sessions first (their closers tell clients why), then listeners, then the audit last.
        sessions.closeAll('shutdown', 'airlock gateway is shutting down');
        await stopAll();
      })()),
  };
}

function configuredHost(config: AirlockConfig): string {
  if (config.gateway.http.publicUrl) return new URL(config.gateway.http.publicUrl).hostname.replace(/^\[|\]$/g, '');
  return parseListen(config.gateway.http.listen).host;
}
