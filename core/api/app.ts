/** The control API: a Hono app with the contract routes; plugins mount beside it. */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { JWK } from 'jose';
import { requireIdentity, type ApiEnv } from './auth.ts';
import { grantRoutes } from './grant-routes.ts';
import { sessionRoutes } from './session-routes.ts';
import { auditRoutes, type AuditHeadSource } from './audit-routes.ts';
import { errorHandler } from './status.ts';
import type { IdentityVerifier } from '../identity/verifier.ts';
import type { Recorder } from '../audit/recorder.ts';
import type { GrantService } from '../grants/service.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import { renderPrometheus, type MetricSample } from '../metrics/prometheus.ts';
import type { Logger } from 'pino';

export interface ControlApiParts {
  verifier: IdentityVerifier;
  recorder: Recorder;
  grants: GrantService;
  sessions: SessionRegistry;
  audit?: AuditHeadSource;
  jwks: () => { keys: JWK[] };
  metrics: () => MetricSample[];
  healthy: () => { ok: boolean; detail: Record<string, unknown> };
  onAuthFailure: () => void;
  log: Logger;
}

export function controlApi(parts: ControlApiParts): Hono {
  const app = new Hono();

  const onError = errorHandler(parts.log);
  app.onError(onError);

  app.get('/healthz', (c) => {
    const h = parts.healthy();
    return c.json({ status: h.ok ? 'ok' : 'degraded', ...h.detail }, h.ok ? 200 : 503);
  });
  app.get('/metrics', (c) => c.text(renderPrometheus(parts.metrics()), 200, { 'content-type': 'text/plain; version=0.0.4' }));
  app.get('/.well-known/jwks.json', (c) => c.json(parts.jwks()));

  const v1 = new Hono<ApiEnv>();
  // Sub-apps keep their own handler in Hono: the same one, so every route answers alike.
  v1.onError(onError);
  v1.use('*', requireIdentity(parts.verifier, parts.recorder, parts.onAuthFailure));
  // After identity, so an oversized request is recorded against the agent that sent it.
  v1.use(
    '*',
    bodyLimit({
      maxSize: 64 * 1024,
      onError: (c) => {
        const reason = 'request body too large (64 KiB max)';
        parts.recorder.record({ type: 'api.rejected', agent: c.get('identity').agent, outcome: 'denied', data: { path: c.req.path, method: c.req.method, reason } });
        return c.json({ error: reason }, 413);
      },
    }),
  );
  v1.route('/grants', grantRoutes(parts.grants));
  v1.route('/sessions', sessionRoutes(parts.sessions));
  if (parts.audit) v1.route('/audit', auditRoutes(parts.audit));
  app.route('/v1', v1);
  return app;
}
