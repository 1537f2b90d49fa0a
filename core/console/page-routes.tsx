/** The console's read views and the live tail of a session (SSE). */
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { AuditRecord } from '../plugin.ts';
import type { ConsoleEnv } from './env.ts';
import type { ConsoleParts } from './parts.ts';
import type { Viewer } from './views/layout.tsx';
import { GrantPage, GrantsPage, type HistoryFilter } from './views/grants.tsx';
import { SessionPage, SessionsPage, type SessionSummary } from './views/sessions.tsx';
import { AuditPage, type AuditFilterForm } from './views/audit.tsx';
import { MessagePage } from './views/signin.tsx';

const PAGE_SIZE = 50;
const AUDIT_PAGE = 100;
const GRANT_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function pageRoutes(parts: ConsoleParts): Hono<ConsoleEnv> {
  const app = new Hono<ConsoleEnv>();
  const viewer = (c: Context<ConsoleEnv>): Viewer => {
    const s = c.get('session');
    return { agent: s.agent, admin: s.admin, csrf: s.csrf };
  };
  const adminOnly = (c: Context<ConsoleEnv>) => c.html(<MessagePage title="Admins only" message={`${c.get('session').agent} is not an admin.`} />, 403);

  app.get('/', (c) => {
    const v = viewer(c);
    const now = Date.now();
    const all = parts.grants.list(v.admin ? undefined : v.agent);
    const filter = historyFilter(c);
    const history = all.filter((g) => (!filter.agent || g.agent === filter.agent) && (!filter.resource || g.resource === filter.resource) && (!filter.status || g.status === filter.status));
    history.sort((a, b) => byText(b.createdAt, a.createdAt));
    const data = {
      pending: all.filter((g) => g.status === 'pending').sort((a, b) => byText(a.createdAt, b.createdAt)),
      active: all.filter((g) => g.status === 'active').sort((a, b) => byText(a.expiresAt ?? '', b.expiresAt ?? '')),
      history: history.slice((filter.page - 1) * PAGE_SIZE, filter.page * PAGE_SIZE),
      historyTotal: history.length,
      pageSize: PAGE_SIZE,
      filter,
      now,
    };
    return c.html(<GrantsPage viewer={v} data={data} notice={doneNotice(c)} />);
  });

  app.get('/grants/:id', (c) => {
    const v = viewer(c);
    const g = parts.grants.publicView(c.req.param('id'));
    if (!g || (!v.admin && g.agent !== v.agent)) return c.html(<MessagePage title="Not found" message="No such grant." />, 404);
    return c.html(<GrantPage viewer={v} grant={g} now={Date.now()} notice={doneNotice(c)} />);
  });

  app.get('/sessions', (c) => {
    const v = viewer(c);
    if (!v.admin) return adminOnly(c);
    const all = parts.sessions.list().map(summary);
    const live = all.filter((s) => s.closedAt === null);
    const ended = all.filter((s) => s.closedAt !== null).sort((a, b) => byText(b.closedAt ?? '', a.closedAt ?? '')).slice(0, 50);
    return c.html(<SessionsPage viewer={v} live={live} ended={ended} notice={doneNotice(c)} />);
  });

  app.get('/sessions/:id', (c) => {
    const v = viewer(c);
    if (!v.admin) return adminOnly(c);
    const s = parts.sessions.get(c.req.param('id'));
    if (!s) return c.html(<MessagePage title="Not found" message="No such session." />, 404);
    const records = parts.audit.query({ session: s.id, limit: 500 }).records.reverse();
    return c.html(<SessionPage viewer={v} session={summary(s)} records={records} />);
  });

  app.get('/sessions/:id/events', (c) => {
    if (!viewer(c).admin) return c.text('admins only', 403);
    const id = c.req.param('id');
    if (!parts.sessions.get(id)) return c.text('no such session', 404);
    const after = Number(c.req.query('after') ?? 0) || 0;
    return streamSSE(c, async (stream) => tailSession(stream, parts, id, after));
  });

  app.get('/audit', (c) => {
    const v = viewer(c);
    if (!v.admin) return adminOnly(c);
    const form: AuditFilterForm = {};
    for (const k of ['agent', 'grant', 'resource', 'type', 'since', 'until'] as const) {
      const value = c.req.query(k)?.trim();
      if (value) form[k] = value.slice(0, 200);
    }
    const since = form.since ? Date.parse(form.since) : undefined;
    const until = form.until ? Date.parse(form.until) : undefined;
    const beforeRaw = Number(c.req.query('before'));
    const page = parts.audit.query({
      agent: form.agent,
      grant: form.grant,
      resource: form.resource,
      type: form.type,
      since: Number.isNaN(since) ? undefined : since,
      until: Number.isNaN(until) ? undefined : until,
      before: Number.isSafeInteger(beforeRaw) && beforeRaw > 0 ? beforeRaw : undefined,
      limit: AUDIT_PAGE,
    });
    const error = Number.isNaN(since) || Number.isNaN(until) ? 'A time bound is not a date (use e.g. 2026-12-01T10:00Z); it was ignored.' : undefined;
    return c.html(<AuditPage viewer={v} filter={form} records={page.records} older={page.older} chain={parts.audit.chain.status} head={parts.audit.lastSeq} error={error} />);
  });

  return app;
}

type SSE = Parameters<Parameters<typeof streamSSE>[1]>[0];

/** Sends the session's records after `after`, then each new one, until it closes. */
async function tailSession(stream: SSE, parts: ConsoleParts, id: string, after: number): Promise<void> {
  const queue: AuditRecord[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = parts.audit.subscribe((r) => {
    if (r.session !== id) return;
    queue.push(r);
    wake?.();
  });
  let closed = false;
  stream.onAbort(() => {
    closed = true;
    wake?.();
  });
  try {
    const backlog = parts.audit.query({ session: id, limit: 500 }).records.reverse();
    let last = after;
    const send = async (r: AuditRecord) => {
      if (r.seq <= last) return false;
      last = r.seq;
      await stream.writeSSE({ event: 'record', id: String(r.seq), data: JSON.stringify(r) });
      return r.type === 'session.closed';
    };
    for (const r of backlog) if (await send(r)) closed = true;
    let beat = Date.now();
    while (!closed && !stream.aborted) {
      const r = queue.shift();
      if (r) {
        if (await send(r)) break;
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 15_000);
        wake = () => {
          clearTimeout(t);
          wake = undefined;
          resolve();
        };
      });
      if (Date.now() - beat >= 15_000) {
        beat = Date.now();
        await stream.writeSSE({ event: 'ping', data: '' });
      }
    }
    if (!stream.aborted) await stream.writeSSE({ event: 'closed', data: '' });
  } finally {
    unsubscribe();
  }
}

function summary(s: { events: unknown[] } & Omit<SessionSummary, 'eventCount'>): SessionSummary {
  const { events, ...rest } = s;
  return { ...rest, eventCount: events.length };
}

/** Code-unit order: ISO timestamps sort correctly, without the cost of localeCompare. */
function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function historyFilter(c: Context<ConsoleEnv>): HistoryFilter {
  const q = (k: string) => c.req.query(k)?.trim().slice(0, 200) || undefined;
  const page = Math.max(1, Math.min(100_000, Number(c.req.query('page')) || 1));
  return { agent: q('agent'), resource: q('resource'), status: q('status'), page };
}

const DONE_TEXT: Record<string, string> = { approved: 'approved', denied: 'denied', revoked: 'revoked' };

/** The message after a redirect: built from fixed words and a checked id, never echoed text. */
function doneNotice(c: Context<ConsoleEnv>): string | undefined {
  const done = DONE_TEXT[c.req.query('done') ?? ''];
  const grant = c.req.query('grant') ?? '';
  return done && GRANT_ID.test(grant) ? `Grant ${grant} ${done}.` : undefined;
}

