/** Live and recently ended sessions, and one session's live tail of audit events. */
import type { AuditRecord } from '../../plugin.ts';
import type { SessionInfo } from '../../sessions/registry.ts';
import { Csrf, Layout, type Viewer } from './layout.tsx';
import { compactJson, shortTime } from './format.ts';

export type SessionSummary = Omit<SessionInfo, 'events'> & { eventCount: number };

function SessionTable(props: { sessions: SessionSummary[]; viewer: Viewer; live: boolean; label: string }) {
  if (props.sessions.length === 0) return <p class="muted">{props.live ? 'No live session.' : 'None.'}</p>;
  return (
    <div class="scroll">
      <table aria-label={props.label}>
        <thead>
          <tr>
            <th>session</th>
            <th>grant</th>
            <th>agent</th>
            <th>resource</th>
            <th>source</th>
            <th>opened</th>
            <th>{props.live ? 'events' : 'closed'}</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {props.sessions.map((s) => (
            <tr id={`session-${s.id}`} data-session={s.id} data-grant={s.grant}>
              <td data-label="session">
                <a href={`/console/sessions/${s.id}`}>
                  <code>{s.id}</code>
                </a>
              </td>
              <td data-label="grant">
                <a href={`/console/grants/${s.grant}`}>
                  <code>{s.grant}</code>
                </a>
              </td>
              <td data-label="agent">{s.agent}</td>
              <td data-label="resource">{s.resource}</td>
              <td data-label="source">{s.source ?? '—'}</td>
              <td data-label="opened">{shortTime(s.openedAt)}</td>
              <td data-label={props.live ? 'events' : 'closed'}>{props.live ? s.eventCount : `${shortTime(s.closedAt)} (${s.closeReason ?? '?'})`}</td>
              <td>
                {props.live && (
                  <form method="post" action={`/console/grants/${s.grant}/revoke`}>
                    <Csrf viewer={props.viewer} />
                    <input type="hidden" name="back" value="/console/sessions" />
                    <button type="submit" class="danger">
                      Revoke
                    </button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function SessionsPage(props: { viewer: Viewer; live: SessionSummary[]; ended: SessionSummary[]; notice?: string | undefined; error?: string | undefined }) {
  return (
    <Layout title="Sessions" viewer={props.viewer} active="sessions" notice={props.notice} error={props.error}>
      <section>
        <h2>Live ({props.live.length})</h2>
        <SessionTable sessions={props.live} viewer={props.viewer} live={true} label="live sessions" />
      </section>
      <section>
        <h2>Recently ended</h2>
        <SessionTable sessions={props.ended} viewer={props.viewer} live={false} label="ended sessions" />
      </section>
    </Layout>
  );
}

export function TailItem(props: { r: AuditRecord }) {
  const r = props.r;
  return (
    <li data-seq={r.seq} data-type={r.type}>
      <span class="ts">{shortTime(r.ts)}</span> <strong>{r.type}</strong> <span class={`outcome ${r.outcome}`}>{r.outcome}</span> <code>{compactJson(r.data, 500)}</code>
    </li>
  );
}

export function SessionPage(props: { viewer: Viewer; session: SessionSummary; records: AuditRecord[] }) {
  const s = props.session;
  const last = props.records.at(-1)?.seq ?? 0;
  return (
    <Layout title={`Session ${s.id}`} viewer={props.viewer} active="sessions">
      <SessionTable sessions={[s]} viewer={props.viewer} live={s.closedAt === null} label="session" />
      <h2>
        Events <span id="tail-state" class="muted">{s.closedAt === null ? '(live)' : '(closed)'}</span>
      </h2>
      <ol id="tail" class="tail" data-stream={`/console/sessions/${s.id}/events?after=${last}`}>
        {props.records.map((r) => (
          <TailItem r={r} />
        ))}
      </ol>
    </Layout>
  );
}
