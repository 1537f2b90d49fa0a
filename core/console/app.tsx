/**
 * The operator console at `<publicUrl>/console` (SPEC "Console and notifications"):
 * server-rendered Hono JSX, one small static script, no build step. Every response gets
 * the security headers; every POST passes an Origin check, then (signed in) the session's
 * CSRF token; a refused one changes nothing and is recorded.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getCookie } from 'hono/cookie';
import { sourceOf } from '../api/auth.ts';
import type { ConsoleEnv } from './env.ts';
import type { ConsoleParts } from './parts.ts';
import { ConsoleSessions } from './session-store.ts';
import { cookieNames, originProblem, sameSecret, securityHeaders } from './security.ts';
import { authRoutes } from './auth-routes.tsx';
import { pageRoutes } from './page-routes.tsx';
import { actionRoutes } from './action-routes.tsx';
import { MessagePage } from './views/signin.tsx';
import { CONSOLE_CSS, CONSOLE_JS } from './static/assets.ts';

const STATIC: Record<string, { type: string; body: string }> = {
  'console.js': { type: 'text/javascript; charset=utf-8', body: CONSOLE_JS },
  'console.css': { type: 'text/css; charset=utf-8', body: CONSOLE_CSS },
};

export function consoleApp(parts: ConsoleParts, sessions = new ConsoleSessions()): Hono {
  const app = new Hono();
  app.use('*', securityHeaders());
  app.use('*', bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.text('request body too large', 413) }));
  app.onError((err, c) => {
    parts.log.error({ err }, 'console error');
    return c.html(<MessagePage title="Error" message="The console hit an internal error; it is logged." />, 500);
  });

  const refuse = (c: Context, reason: string, agent?: string) => {
    parts.recorder.record({ type: 'console.rejected', agent, outcome: 'denied', data: { method: c.req.method, path: c.req.path.slice(0, 200), reason, source: sourceOf(c) } });
    return c.html(<MessagePage title="Refused" message={`Refused: ${reason}. Nothing was changed.`} />, 403);
  };

  app.get('/static/:file', (c) => {
    const f = STATIC[c.req.param('file')];
    return f ? c.body(f.body, 200, { 'content-type': f.type, 'cache-control': 'public, max-age=300' }) : c.notFound();
  });

  app.route('/', authRoutes(parts, sessions, refuse));

  const signedIn = new Hono<ConsoleEnv>();
  signedIn.use('*', async (c, next) => {
    const session = sessions.get(getCookie(c, cookieNames(parts.publicUrl()).session));
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const problem = originProblem(c, parts.publicUrl());
      if (problem) return refuse(c, problem, session?.agent);
      if (!session) return refuse(c, 'not signed in (or the session ended)');
      const form = await c.req.parseBody();
      if (!sameSecret(typeof form._csrf === 'string' ? form._csrf : undefined, session.csrf)) return refuse(c, 'form token missing or wrong', session.agent);
    } else if (!session) {
      return c.redirect('/console/signin', 303);
    }
    c.set('session', session);
    await parts.warmUp?.();
    await next();
  });
  signedIn.route('/', actionRoutes(parts));
  signedIn.route('/', pageRoutes(parts));
  app.route('/', signedIn);
  return app;
}
