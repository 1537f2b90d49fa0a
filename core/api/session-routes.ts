/** `/v1/sessions` (admin): live and recently ended sessions with their events. */
import { Hono } from 'hono';
import type { ApiEnv } from './auth.ts';
import type { SessionRegistry } from '../sessions/registry.ts';

export function sessionRoutes(sessions: SessionRegistry): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.use('*', async (c, next) => {
    const identity = c.get('identity');
    if (!identity.admin) return c.json({ error: `forbidden: ${identity.agent} is not an admin` }, 403);
    await next();
  });
  app.get('/', (c) => c.json({ sessions: sessions.list().map(({ events, ...s }) => ({ ...s, eventCount: events.length })) }));
  app.get('/:id', (c) => {
    const s = sessions.get(c.req.param('id'));
    return s ? c.json(s) : c.json({ error: 'session not found' }, 404);
  });
  return app;
}
