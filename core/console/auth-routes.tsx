/**
 * Sign-in and sign-out. A pasted token is verified like a control-API bearer token; an
 * OIDC issuer goes through the authorization code flow with PKCE. Either way the browser
 * gets only a random session id in an HttpOnly, SameSite=Strict cookie.
 */
import { randomBytes } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { decodeJwt } from 'jose';
import { ErrorCodes, type ErrorCode } from '../errors.ts';
import { sourceOf } from '../api/auth.ts';
import type { ConsoleParts } from './parts.ts';
import type { ConsoleSessions } from './session-store.ts';
import { OidcClients, OidcError } from './oidc.ts';
import { cookieNames, originProblem, sameSecret } from './security.ts';
import { ContinuePage, MessagePage, SignInPage } from './views/signin.tsx';

export function authRoutes(parts: ConsoleParts, sessions: ConsoleSessions, refuse: (c: Context, reason: string) => Response | Promise<Response>): Hono {
  const app = new Hono();
  const oidc = new OidcClients(parts.issuers, parts.env);
  const names = () => cookieNames(parts.publicUrl());
  const cookieBase = () => ({ path: '/', httpOnly: true, secure: names().secure });

  const signInForm = (c: Context, error?: string, status: 200 | 401 | 429 | 400 = 200) => {
    const csrf = randomBytes(24).toString('base64url');
    setCookie(c, names().pre, csrf, { ...cookieBase(), sameSite: 'Strict', maxAge: 3600 });
    return c.html(<SignInPage csrf={csrf} oidc={oidc.names()} error={error} />, status);
  };

  const startSession = (c: Context, who: { agent: string; admin: boolean; method: 'token' | 'oidc'; notAfter?: number | undefined }) => {
    const { id } = sessions.create(who);
    setCookie(c, names().session, id, { ...cookieBase(), sameSite: 'Strict' });
    parts.recorder.record({ type: 'console.signin', agent: who.agent, outcome: 'ok', data: { method: who.method, admin: who.admin, source: sourceOf(c) } });
  };

  /** Record a failed sign-in; true when its address is past the gateway-wide failure budget. */
  const failed = (c: Context, code: ErrorCode, reason: string): boolean =>
    parts.recorder.authRefused({ source: sourceOf(c), code, reason, data: { path: c.req.path, via: 'console' } }).limited;

  app.get('/signin', (c) => signInForm(c));

  app.post('/signin', async (c) => {
    const problem = originProblem(c, parts.publicUrl());
    if (problem) return refuse(c, problem);
    const form = await c.req.parseBody();
    if (!sameSecret(typeof form._csrf === 'string' ? form._csrf : undefined, getCookie(c, names().pre))) return refuse(c, 'sign-in form token missing or wrong');
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    if (!token) return signInForm(c, 'Paste a token to sign in.', 400);
    let who: { agent: string; admin: boolean };
    try {
      who = await parts.verifyToken(token);
    } catch (e) {
      // As everywhere: failures are limited per address, a token that verifies never is.
      if (failed(c, ErrorCodes.BAD_IDENTITY, (e as Error).message)) return signInForm(c, 'Too many failed sign-ins; try again in a minute.', 429);
      return signInForm(c, `Sign-in refused: ${(e as Error).message}.`, 401);
    }
    const exp = decodeJwt(token).exp;
    deleteCookie(c, names().pre, { path: '/' });
    startSession(c, { ...who, method: 'token', notAfter: exp !== undefined ? exp * 1000 : undefined });
    return c.redirect('/console', 303);
  });

  app.get('/oidc/:issuer/start', async (c) => {
    const name = c.req.param('issuer');
    try {
      const { state, location } = await oidc.begin(name, redirectUri(parts.publicUrl(), name));
      // Lax, not Strict: the identity provider's redirect back is a cross-site navigation.
      setCookie(c, names().oidc, state, { ...cookieBase(), sameSite: 'Lax', maxAge: 600 });
      return c.redirect(location, 302);
    } catch (e) {
      if (e instanceof OidcError) return c.html(<MessagePage title="Sign-in failed" message={e.message} />, 400);
      throw e;
    }
  });

  app.get('/oidc/:issuer/callback', async (c) => {
    const name = c.req.param('issuer');
    const state = c.req.query('state');
    const code = c.req.query('code');
    const cookieState = getCookie(c, names().oidc);
    deleteCookie(c, names().oidc, { path: '/' });
    const error = c.req.query('error');
    if (error) {
      failed(c, ErrorCodes.BAD_IDENTITY, `OIDC: identity provider answered ${error.slice(0, 100)}`);
      return c.html(<MessagePage title="Sign-in failed" message={`The identity provider refused the sign-in (${error.slice(0, 100)}).`} />, 401);
    }
    if (!state || !code || !sameSecret(state, cookieState)) {
      failed(c, ErrorCodes.BAD_IDENTITY, 'OIDC: sign-in state missing or not started in this browser');
      return c.html(<MessagePage title="Sign-in failed" message="This sign-in was not started in this browser; start again." />, 400);
    }
    try {
      const who = await oidc.complete(name, state, code, redirectUri(parts.publicUrl(), name));
      startSession(c, { agent: who.agent, admin: parts.admins.includes(who.agent), method: 'oidc' });
      return c.html(<ContinuePage />);
    } catch (e) {
      if (!(e instanceof OidcError)) throw e;
      failed(c, ErrorCodes.BAD_IDENTITY, `OIDC: ${e.message}`);
      return c.html(<MessagePage title="Sign-in failed" message={e.message} />, 401);
    }
  });

  app.post('/signout', async (c) => {
    const problem = originProblem(c, parts.publicUrl());
    if (problem) return refuse(c, problem);
    const id = getCookie(c, names().session);
    const session = sessions.get(id);
    const form = await c.req.parseBody();
    if (session && !sameSecret(typeof form._csrf === 'string' ? form._csrf : undefined, session.csrf)) return refuse(c, 'form token missing or wrong');
    sessions.end(id);
    deleteCookie(c, names().session, { path: '/' });
    if (session) parts.recorder.record({ type: 'console.signout', agent: session.agent, outcome: 'ok', data: { source: sourceOf(c) } });
    return c.redirect('/console/signin', 303);
  });

  return app;
}

function redirectUri(publicUrl: string, issuer: string): string {
  return `${publicUrl.replace(/\/$/, '')}/console/oidc/${encodeURIComponent(issuer)}/callback`;
}
