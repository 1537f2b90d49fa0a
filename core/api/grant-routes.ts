/** `/v1/grants` per the control API contract (docs/contract.md). Errors go to the app's onError. */
import { Hono } from 'hono';
import type { ApiEnv } from './auth.ts';
import { AirlockError, ErrorCodes } from '../errors.ts';
import { denyRequestSchema, type GrantService } from '../grants/service.ts';

async function jsonBody(c: { req: { json(): Promise<unknown> } }): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    return 'not JSON';
  }
}

export function grantRoutes(grants: GrantService): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', async (c) => {
    const issued = await grants.request(c.get('identity').agent, (await jsonBody(c)) ?? 'not JSON');
    return c.json(issued.body, issued.status, { 'cache-control': 'no-store' });
  });

  app.get('/', (c) => {
    const identity = c.get('identity');
    return c.json({ grants: grants.list(identity.admin ? undefined : identity.agent) });
  });

  /** A grant the caller may see: its own, or any for an admin. Others do not exist for it. */
  const visible = (id: string, identity: ApiEnv['Variables']['identity']) => {
    const g = grants.publicView(id);
    if (!g || (!identity.admin && g.agent !== identity.agent)) throw new AirlockError(ErrorCodes.GRANT_NOT_FOUND, 'grant not found');
    return g;
  };

  /** Admin actions: a non-admin is refused, and the attempt is recorded. */
  const requireAdmin = (id: string, identity: ApiEnv['Variables']['identity'], action: string) => {
    if (!identity.admin) throw grants.violation(identity.agent, grants.view(id), action, `forbidden: ${identity.agent} is not an admin`);
  };

  app.get('/:id', (c) => c.json(visible(c.req.param('id'), c.get('identity'))));

  app.post('/:id/approve', async (c) => {
    const identity = c.get('identity');
    requireAdmin(c.req.param('id'), identity, 'approve');
    return c.json(await grants.approve(c.req.param('id'), identity.agent));
  });

  app.post('/:id/deny', async (c) => {
    const identity = c.get('identity');
    requireAdmin(c.req.param('id'), identity, 'deny');
    const parsed = denyRequestSchema.safeParse(await jsonBody(c));
    if (!parsed.success) throw new AirlockError(ErrorCodes.BAD_REQUEST, parsed.error.issues[0]?.message ?? 'expected {"reason": "..."}');
    return c.json(await grants.deny(c.req.param('id'), identity.agent, parsed.data.reason));
  });

  app.delete('/:id', async (c) => {
    const identity = c.get('identity');
    return c.json(await grants.revoke(visible(c.req.param('id'), identity).id, identity.agent));
  });

  return app;
}
