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
import { createStore } from './store/create.ts';
import { localIssuerIdentity } from './store/issuer-key.ts';
import { StoreWatchdog } from './store/watchdog.ts';
import { storeMetrics } from './store/metrics.ts';
import { GrantEvents } from './grants/events.ts';
import { GrantService } from './grants/service.ts';
import { endMessage, SessionRegistry } from './sessions/registry.ts';
import { controlApi } from './api/app.ts';
import { mcpHost } from './mcp/app.ts';
import { loadTlsMaterial, type TlsMaterial } from './tls/material.ts';
import { startHttpListener, type HttpListener } from './gateway/http-server.ts';
import { startPlugins } from './gateway/start-plugins.ts';
import { attachSinks } from './gateway/attach-sinks.ts';
import { gatewayMetrics } from './gateway/metrics.ts';
import { parseListen } from './gateway/listen.ts';
import { startConsole } from './console/index.ts';
import { SessionLedger, type LeftOpen, type LedgerRecovery } from './sessions/ledger.ts';
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
  /** What the local issuer signs agent tokens with (the shared key with a PostgreSQL store). */
  readonly issuer: GatewayIdentity;
  readonly listening: Readonly<Record<string, readonly string[]>>;
  readonly grants: GrantService;
  /** The started plugins (their tools, for the MCP host). */
  readonly plugins: readonly StartedPlugin[];
  /**
   * Drain (SIGTERM): /healthz answers 503 and new sessions are refused at once; live
   * sessions may finish for up to `boundMs`; then whatever is left is cut and the gateway
   * closes.
   */
  drain(boundMs: number): Promise<void>;
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
  // Sessions a killed predecessor left open are closed in the audit once grants are known.
  const ledger = new SessionLedger(dataDir);
  const previousRun = ledger.recover();
  const audit = await AuditPipeline.open({
    dataDir,
    uncleanStop: previousRun.unclean,
    durability: config.audit.durability,
    gatewayId: identity.gatewayId,
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: parseDuration(config.audit.checkpointInterval),
    spoolMaxBytes: config.audit.spoolMaxBytes,
    signingKey: { privateKey: identity.key.signingKey, kid: identity.key.kid },
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
    return await assemble({ options, config, dataDir, identity, audit, recorder, auditAvailable, aws, byType, log, stops, stopAll, ledger, previousRun });
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
  ledger: SessionLedger;
  previousRun: LedgerRecovery;
};

/** The stages after the audit exists, in order; each registers its own stop. */
async function assemble(p: Parts): Promise<Gateway> {
  const { config, dataDir, identity, audit, recorder, aws, log, stops, ledger, previousRun } = p;
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
  const { store, maxStalenessMs } = createStore(config.store, { dataDir, replicaId: identity.gatewayId, onError: (message) => log.warn({ part: 'store' }, message) });
  stops.push(() => store.close());
  let sessionsRef: SessionRegistry | undefined;
  const watchdog = new StoreWatchdog(store, maxStalenessMs, (message) => sessionsRef?.closeAll('policy', message));
  stops.push(() => watchdog.stop());
  const grants = new GrantService({
    config,
    plugins: p.byType,
    store,
    storeRefusal: () => watchdog.refusal(),
    onStoreError: (err) => log.warn({ err, part: 'store' }, 'a background store operation failed'),
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
  // A session starts only while the store confirms the view (fail closed, SPEC).
  let draining = false;
  const requireActive = (id: string) => {
    if (draining) throw new AirlockError(ErrorCodes.INTERNAL, 'airlock replica is shutting down: connect again (the load balancer sends you to another replica)');
    const refused = watchdog.refusal();
    if (refused) throw refused;
    return grants.requireActive(id);
  };
  const sessions = new SessionRegistry(recorder, p.auditAvailable, { requireActive, maxSessions: (id) => grants.maxSessions(id) });
  sessionsRef = sessions;
  events.subscribe((e) => {
    if (e.kind !== 'ended') return;
    const { reason, message } = endMessage(e.grant.id, e.reason);
    sessions.closeGrant(e.grant.id, reason, message);
    aws.forgetGrant(e.grant.id);
  });
  events.subscribe((e) => {
    const plugin = started.get(e.grant.resourceType);
    if (!plugin) return;
    // A grant activated on another replica was prepared there (onGrantActive ran once).
    if (e.kind === 'activated') return e.remote ? undefined : plugin.onGrantActive(e.grant);
    return plugin.onGrantEnded(e.grant, e.reason);
  });
  await grants.load();
  closeLeftOpen(recorder, grants, previousRun.leftOpen);
  ledger.start();
  recorder.observe((e) => {
    if (e.session === undefined) return;
    if (e.type === 'session.opened') ledger.opened(e.session, e.grant);
    else if (e.type === 'session.closed') ledger.closed(e.session);
  });
  watchdog.start();
  const issuer = await localIssuerIdentity(store, identity);

  // 3. The control API, then the plugins beside it.
  let authFailures = 0;
  let notifications: Notifications | undefined;
  const verifier = new IdentityVerifier(config.identity.issuers, config.identity.admins, issuer);
  app.route('/', controlApi({
    verifier,
    recorder,
    grants,
    sessions,
    audit,
    jwks: () => ({ keys: issuer === identity ? [identity.key.publicJwk] : [issuer.key.publicJwk, identity.key.publicJwk] }),
    metrics: () => [...gatewayMetrics(grants, sessions, audit, () => authFailures), ...storeMetrics(watchdog.status()), ...audit.metricSamples(), ...recorder.metricSamples(), ...(notifications?.metrics() ?? [])],
    healthy: () => {
      const storeStatus = watchdog.status();
      const storeOk = storeStatus.connected && !storeStatus.stale;
      return { ok: !audit.full && storeOk && !draining, detail: { gatewayId: identity.gatewayId, auditSpoolFull: audit.full, liveSessions: sessions.liveCount, store: storeStatus, ...(draining ? { draining: true } : {}) } };
    },
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
    state: store.state,
    app,
    log,
    onStarted: (plugin) => started.set(plugin.type, plugin),
  });
  stops.push(() => plugins.close());
  // MCP for agents (issue 15): the same verifier, grants and audit as the control API.
  const mcp = mcpHost({ config, publicUrl, gatewayId: identity.gatewayId, verifier, recorder, grants, events, plugins: p.byType, started: () => [...started.values()], log });
  app.route('/', mcp.app);
  stops.push(() => mcp.close());
  // At shutdown the listener stops first (no new requests reach closing parts).
  stops.push(closeHttp);
  ready = app;
  const listening: Record<string, readonly string[]> = { ...plugins.listening, http: [http.address] };
  notifications = await startNotifications({ targets: config.notify, dataDir, gatewayId: identity.gatewayId, headSeq: () => audit.metrics().lastSeq, grant: (id) => grants.publicView(id), consoleBase: () => `${publicUrl}/console`, log });
  stops.push(() => notifications?.close());
  await attachSinks({ sinks: p.options.sinks, config, audit, context: { gatewayId: identity.gatewayId, dataDir, aws: aws.forSinks() }, log });

  log.info({ url: publicUrl, listening, gatewayId: identity.gatewayId }, 'airlock gateway started');
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Sessions first (their closers tell clients why), then listeners, then the audit last.
      sessions.closeAll('shutdown', 'airlock gateway is shutting down');
      // Failures still being counted into a summary are written before the audit closes.
      recorder.flushAuthFailures();
      await p.stopAll();
      ledger.stop();
    })());
  return {
    url: publicUrl,
    config,
    identity,
    issuer,
    listening,
    grants,
    plugins: [...started.values()],
    drain: async (boundMs) => {
      draining = true;
      log.info({ liveSessions: sessions.liveCount, boundMs }, 'draining: new sessions refused, waiting for live ones');
      const until = Date.now() + boundMs;
      while (sessions.liveCount > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      await close();
    },
    close,
  };
}

/** `session.closed` (reason `crash`) for each session a killed predecessor never closed. */
function closeLeftOpen(recorder: Recorder, grants: GrantService, leftOpen: readonly LeftOpen[]): void {
  for (const { session, grant } of leftOpen) {
    const known = grant === undefined ? undefined : grants.view(grant);
    recorder.record({ type: 'session.closed', session, grant: known, outcome: 'error', data: { reason: 'crash', ...(known ? {} : { grantId: grant }) } });
  }
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
