/**
 * The hub: wires config, identity, audit, grants, sessions, the control API, plugins and
 * sinks into one running gateway. It holds no logic of its own; each part lives in its
 * folder. Data flows one way (docs/design.md): agent → API → policy → grants → audit;
 * client → plugin → context → upstream; a grant event → session registry → the plugin's
 * closer, the AWS layer and the plugins' lifecycle hooks.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Hono } from 'hono';
import pino, { type Logger } from 'pino';
import { AirlockError, ErrorCodes } from './errors.ts';
import type { GatewayInfo, RegisteredPlugin, RegisteredSink, StartedPlugin } from './plugin.ts';
import type { AirlockConfig } from './config/schema.ts';
import { loadConfigFile, validateConfig } from './config/load.ts';
import { loadOrCreateGatewayIdentity, type GatewayIdentity } from './identity/gateway-key.ts';
import { IdentityVerifier } from './identity/verifier.ts';
import { AuditPipeline } from './audit/pipeline.ts';
import { Recorder } from './audit/recorder.ts';
import { createAwsLayer, type AwsLayer } from './aws/index.ts';
import type { RoleBinding } from './aws/credentials.ts';
import { FileGrantStore } from './grants/file-store.ts';
import { GrantEvents } from './grants/events.ts';
import { GrantService } from './grants/service.ts';
import { endMessage, SessionRegistry } from './sessions/registry.ts';
import { controlApi } from './api/app.ts';
import { loadTlsMaterial, type TlsMaterial } from './tls/material.ts';
import { startHttpListener, type HttpListener } from './gateway/http-server.ts';
import { startPlugins } from './gateway/start-plugins.ts';
import { attachSinks } from './gateway/attach-sinks.ts';
import { gatewayMetrics } from './gateway/metrics.ts';
import { parseListen } from './gateway/listen.ts';
import { startConsole } from './console/index.ts';
import { startNotifications, type Notifications } from './notify/index.ts';
import { parseDuration } from './config/duration.ts';

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
  /** The started plugins (their tools, for the MCP host). */
  readonly plugins: readonly StartedPlugin[];
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.log ?? pino({ name: 'airlock' });
  const loadOpts = { plugins: options.plugins, sinks: options.sinks };
  const config = options.configPath ? loadConfigFile(options.configPath, loadOpts) : validateConfig(options.config ?? {}, '(config)', loadOpts);
  const dataDir = resolve(config.gateway.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const byType = new Map(options.plugins.map((p) => [p.type, p]));

  const identity = await loadOrCreateGatewayIdentity(dataDir);
  const audit = await AuditPipeline.open({
    dataDir,
    durability: config.audit.durability,
    gatewayId: identity.gatewayId,
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: parseDuration(config.audit.checkpointInterval),
    spoolMaxBytes: config.audit.spoolMaxBytes,
    signingKey: { privateKey: identity.key.privateKey, kid: identity.key.kid },
    log: log.child({ part: 'audit' }),
  });
  const recorder = new Recorder(audit, { authFailureSummaryMs: parseDuration(config.audit.authFailureSummaryInterval ?? '60s') });
  const auditAvailable = () => !audit.full;
  const aws = createAwsLayer({ region: config.aws.region, endpoints: config.aws.endpoints, roles: awsBindings(config, byType), log: log.child({ part: 'aws' }) });

  // Anything started below is stopped again if a later step fails.
  const stops: Array<() => Promise<void> | void> = [() => audit.close(), () => aws.close()];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    return await assemble({ options, config, dataDir, identity, audit, recorder, auditAvailable, aws, byType, log, stops, stopAll });
  } catch (e) {
    await stopAll();
    throw e;
  }
}

type Parts = {
  options: GatewayOptions;
  config: AirlockConfig;
  dataDir: string;
  identity: GatewayIdentity;
  audit: AuditPipeline;
  recorder: Recorder;
  auditAvailable: () => boolean;
  aws: AwsLayer;
  byType: ReadonlyMap<string, RegisteredPlugin>;
  log: Logger;
  stops: Array<() => Promise<void> | void>;
  stopAll: () => Promise<void>;
};

/** The stages after the audit exists, in order; each registers its own stop. */
async function assemble(p: Parts): Promise<Gateway> {
  const { config, dataDir, identity, audit, recorder, aws, log, stops } = p;
  // 1. The HTTP listener is bound first, so every part gets a plain publicUrl. Until the
  //    routes are in place it answers 503.
  const httpTls: TlsMaterial | undefined = config.gateway.http.tls ? await loadTlsMaterial(config.gateway.http.tls, dataDir, [configuredHost(config)]) : undefined;
  const app = new Hono();
  let ready: Hono | undefined;
  const http: HttpListener = await startHttpListener(
    { fetch: (req, env) => (ready ? ready.fetch(req, env) : new Response('airlock is starting', { status: 503 })) },
    config.gateway.http.listen,
    httpTls,
  );
  let httpClosed: Promise<void> | undefined;
  const closeHttp = () => (httpClosed ??= http.close());
  stops.push(closeHttp);
  const publicUrl = config.gateway.http.publicUrl ?? http.url.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:');
  const gatewayInfo: GatewayInfo = {
    publicUrl,
    httpCaPem: httpTls?.certPem,
    dataDir,
    gatewayId: identity.gatewayId,
    tls: () => loadTlsMaterial('self-signed', dataDir, [configuredHost(config)]),
  };

  // 2. Grants publish events; sessions, the AWS layer and the plugins subscribe.
  const started = new Map<string, StartedPlugin>();
  const events = new GrantEvents();
  const grantStore = new FileGrantStore(dataDir);
  stops.push(() => grantStore.close());
  const grants = new GrantService({
    config,
    plugins: p.byType,
    store: grantStore,
    recorder,
    events,
    auditAvailable: p.auditAvailable,
    connectInfo: (grant, secret) => {
      const info = started.get(grant.resourceType)?.connectInfo({ grant, secret });
      if (!info) throw new AirlockError(ErrorCodes.INTERNAL, `the ${grant.resourceType} plugin gives no connect info`);
      return info;
    },
    onSubscriberError: (err) => log.error({ err }, 'a grant event subscriber failed'),
  });
  stops.push(() => grants.close());
  const sessions = new SessionRegistry(recorder, p.auditAvailable, { requireActive: (id) => grants.requireActive(id), maxSessions: (id) => grants.maxSessions(id) });
  events.subscribe((e) => {
    if (e.kind !== 'ended') return;
    const { reason, message } = endMessage(e.grant.id, e.reason);
    sessions.closeGrant(e.grant.id, reason, message);
    aws.forgetGrant(e.grant.id);
  });
  events.subscribe((e) => {
    const plugin = started.get(e.grant.resourceType);
    if (!plugin) return;
    return e.kind === 'activated' ? plugin.onGrantActive(e.grant) : plugin.onGrantEnded(e.grant, e.reason);
  });
  await grants.load();

  // 3. The control API, then the plugins beside it.
  let authFailures = 0;
  let notifications: Notifications | undefined;
  const verifier = new IdentityVerifier(config.identity.issuers, config.identity.admins, identity);
  app.route('/', controlApi({
    verifier,
    recorder,
    grants,
    sessions,
    audit,
    jwks: () => ({ keys: [identity.key.publicJwk] }),
    metrics: () => [...gatewayMetrics(grants, sessions, audit, () => authFailures), ...audit.metricSamples(), ...recorder.metricSamples(), ...(notifications?.metrics() ?? [])],
    healthy: () => ({ ok: !audit.full, detail: { gatewayId: identity.gatewayId, auditSpoolFull: audit.full, liveSessions: sessions.liveCount } }),
    onAuthFailure: () => void authFailures++,
    log,
  }));
  // The operator console beside the API; approval notifications follow the spool.
  const consoleUi = startConsole({ publicUrl: () => publicUrl, grants, sessions, verifyToken: (t) => verifier.verify(t), issuers: config.identity.issuers, admins: config.identity.admins, recorder, log: log.child({ part: 'console' }), dataDir, gatewayId: identity.gatewayId, publicKeys: [identity.key.publicJwk] });
  app.route('/console', consoleUi.app);
  stops.push(() => consoleUi.close());
  const plugins = await startPlugins({
    plugins: p.options.plugins,
    config,
    gateway: gatewayInfo,
    grants,
    sessions,
    recorder,
    aws: (g) => aws.forPlugin(g),
    app,
    log,
    onStarted: (plugin) => started.set(plugin.type, plugin),
  });
  stops.push(() => plugins.close());
  // At shutdown the listener stops first (no new requests reach closing parts).
  stops.push(closeHttp);
  ready = app;
  const listening: Record<string, readonly string[]> = { ...plugins.listening, http: [http.address] };
  notifications = await startNotifications({ targets: config.notify, dataDir, gatewayId: identity.gatewayId, headSeq: () => audit.metrics().lastSeq, grant: (id) => grants.publicView(id), consoleBase: () => `${publicUrl}/console`, log });
  stops.push(() => notifications?.close());
  await attachSinks({ sinks: p.options.sinks, config, audit, context: { gatewayId: identity.gatewayId, dataDir, aws: aws.forSinks() }, log });

  log.info({ url: publicUrl, listening, gatewayId: identity.gatewayId }, 'airlock gateway started');
  let closing: Promise<void> | undefined;
  return {
    url: publicUrl,
    config,
    identity,
    listening,
    grants,
    plugins: [...started.values()],
    close: () =>
      (closing ??= (async () => {
        // Sessions first (their closers tell clients why), then listeners, then the audit last.
        sessions.closeAll('shutdown', 'airlock gateway is shutting down');
        await p.stopAll();
      })()),
  };
}

/** Region and per-grant role of each AWS-facing resource, as its plugin declares them. */
function awsBindings(config: AirlockConfig, plugins: ReadonlyMap<string, RegisteredPlugin>): Map<string, RoleBinding> {
  const roles = new Map<string, RoleBinding>();
  for (const [name, resource] of Object.entries(config.resources)) {
    const binding = plugins.get(resource.type)?.awsBinding(resource);
    if (binding) roles.set(name, { roleArn: binding.roleArn, region: binding.region });
  }
  return roles;
}

function configuredHost(config: AirlockConfig): string {
  if (config.gateway.http.publicUrl) return new URL(config.gateway.http.publicUrl).hostname.replace(/^\[|\]$/g, '');
  return parseListen(config.gateway.http.listen).host;
}
