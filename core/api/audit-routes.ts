/**
 * `GET /v1/audit/head` (admin): this gateway's chain head, signed now, to compare a stored
 * log against (`airlock audit verify --gateway URL`). `?seq=N` adds the hash of record N
 * while the spool still holds it, so a log that ends before the head can be matched
 * record for record.
 */
import { Hono } from 'hono';
import type { ApiEnv } from './auth.ts';
import type { AuditHead } from '../audit/pipeline.ts';

export interface AuditHeadSource {
  head(atSeq?: number): Promise<AuditHead>;
}

export function auditRoutes(audit: AuditHeadSource): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.use('*', async (c, next) => {
    const identity = c.get('identity');
    if (!identity.admin) return c.json({ error: `forbidden: ${identity.agent} is not an admin` }, 403);
    await next();
  });
  app.get('/head', async (c) => {
    const raw = c.req.query('seq');
    if (raw !== undefined && !/^\d{1,15}$/.test(raw)) return c.json({ error: 'seq must be a positive integer' }, 400);
    return c.json(await audit.head(raw === undefined ? undefined : Number(raw)));
  });
  return app;
}
