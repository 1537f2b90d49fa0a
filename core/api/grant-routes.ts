/** `/v1/grants` per the control API contract. */
import { Hono } from 'hono';
import type { ApiEnv } from './auth.ts';
import { GrantRefusal, type GrantService } from '../grants/service.ts';

export function grantRoutes(grants: GrantService): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', async (c) => {
    const identity = c.get('identity');
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      body = undefined;
    }
    try {
      const issued = await grants.request(identity.agent, body ?? 'not JSON');
      return c.json(issued.body, issued.status, { 'cache-control': 'no-store' });
    } catch (e) {
      if (e instanceof GrantRefusal) return c.json({ error: e.message, rule: e.rule }, e.httpStatus);
      throw e;
    }
  });

  app.get('/', (c) => {
    const identity = c.get('identity');
    return c.json({ grants: grants.list(identity.admin ? undefined : identity.agent) });
  });

  app.get('/:id', (c) => {
    const identity = c.get('identity');
    const g = grants.publicView(c.req.param('id'));
    // An agent learns nothing about grants that are not its own.
    if (!g || (!identity.admin && g.agent !== identity.agent)) return c.json({ error: 'grant not found' }, 404);
    return c.json(g);
  });

  app.post('/:id/approve', async (c) => {
    const identity = c.get('identity');
    if (!identity.admin) {
      const refusal = grants.violation(identity.agent, grants.view(c.req.param('id')), 'approve', `forbidden: ${identity.agent} is not an admin`);
      return c.json({ error: refusal.message }, 403);
    }
    try {
      return c.json(await grants.approve(c.req.param('id'), identity.agent));
    } catch (e) {
      if (e instanceof GrantRefusal) return c.json({ error: e.message }, e.httpStatus);
      throw e;
    }
  });

  app.delete('/:id', async (c) => {
    const identity = c.get('identity');
    const g = grants.publicView(c.req.param('id'));
    if (!g || (!identity.admin && g.agent !== identity.agent)) return c.json({ error: 'grant not found' }, 404);
    try {
      return c.json(await grants.revoke(g.id, identity.agent));
    } catch (e) {
      if (e instanceof GrantRefusal) return c.json({ error: e.message }, e.httpStatus);
      throw e;
    }
  });

  return app;
}
