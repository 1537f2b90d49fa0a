/**
 * State changes from the console: approve, deny (with a reason) and revoke. Each one has
 * passed the Origin and CSRF checks (app.tsx) before it gets here; the grant service
 * enforces four eyes and records the outcome.
 */
import { Hono, type Context } from 'hono';
import { isAirlockError } from '../errors.ts';
import { HTTP_STATUS } from '../api/status.ts';
import type { ConsoleEnv } from './env.ts';
import type { ConsoleParts } from './parts.ts';
import { MessagePage } from './views/signin.tsx';

type Action = 'approve' | 'deny' | 'revoke';
const DONE: Record<Action, string> = { approve: 'approved', deny: 'denied', revoke: 'revoked' };

export function actionRoutes(parts: ConsoleParts): Hono<ConsoleEnv> {
  const app = new Hono<ConsoleEnv>();

  const fail = (c: Context<ConsoleEnv>, status: 400 | 403 | 404 | 409 | 500 | 502 | 503, message: string) =>
    c.html(<MessagePage title="Not done" message={message} />, status);

  const run = (action: Action) => async (c: Context<ConsoleEnv>) => {
    const session = c.get('session');
    const id = c.req.param('id') ?? '';
    const form = await c.req.parseBody();
    const g = parts.grants.publicView(id);
    // A non-admin learns nothing about grants that are not its own.
    if (!g || (!session.admin && g.agent !== session.agent)) return fail(c, 404, `grant ${id.slice(0, 64)} not found`);
    if (action !== 'revoke' && !session.admin) {
      const reason = `forbidden: ${session.agent} is not an admin`;
      parts.recorder.record({ type: 'policy.violation', agent: session.agent, resource: g.resource, outcome: 'denied', data: { action, reason, grantId: g.id, via: 'console' } });
      return fail(c, 403, reason);
    }
    try {
      if (action === 'approve') await parts.grants.approve(g.id, session.agent);
      else if (action === 'deny') await parts.grants.deny(g.id, session.agent, typeof form.reason === 'string' ? form.reason : '');
      else await parts.grants.revoke(g.id, session.agent);
    } catch (e) {
      // The API's one status table decides how a refusal reads here too.
      if (!isAirlockError(e)) throw e;
      const status = HTTP_STATUS[e.code];
      return fail(c, status === 400 || status === 403 || status === 404 || status === 409 || status === 502 || status === 503 ? status : 500, e.message);
    }
    return c.redirect(`${backTo(form.back)}?done=${DONE[action]}&grant=${encodeURIComponent(g.id)}`, 303);
  };

  app.post('/grants/:id/approve', run('approve'));
  app.post('/grants/:id/deny', run('deny'));
  app.post('/grants/:id/revoke', run('revoke'));
  return app;
}

/** Only the console's own list pages are valid places to return to. */
function backTo(value: unknown): string {
  return value === '/console/sessions' ? '/console/sessions' : '/console';
}
