/** The grants views: pending (approve / deny), active (revoke) and history, one row each. */
import type { PublicGrant } from '../../grants/service.ts';
import { Csrf, Layout, type Viewer } from './layout.tsx';
import { compactJson, query, shortTime, timeLeft } from './format.ts';

export interface HistoryFilter {
  agent?: string | undefined;
  resource?: string | undefined;
  status?: string | undefined;
  page: number;
}

export interface GrantsPageData {
  pending: PublicGrant[];
  active: PublicGrant[];
  history: PublicGrant[];
  historyTotal: number;
  pageSize: number;
  filter: HistoryFilter;
  now: number;
}

function Actions(props: { g: PublicGrant; viewer: Viewer }) {
  const { g, viewer } = props;
  if (g.status === 'pending' && viewer.admin) {
    if (g.agent === viewer.agent) return <span class="muted">needs another admin</span>;
    return (
      <div class="actions">
        <form method="post" action={`/console/grants/${g.id}/approve`}>
          <Csrf viewer={viewer} />
          <button type="submit" class="approve">
            Approve
          </button>
        </form>
        <form method="post" action={`/console/grants/${g.id}/deny`} class="deny">
          <Csrf viewer={viewer} />
          <input type="text" name="reason" required maxlength={2000} placeholder="reason" aria-label={`Reason to deny ${g.id}`} />
          <button type="submit" class="danger">
            Deny
          </button>
        </form>
      </div>
    );
  }
  if ((g.status === 'active' || g.status === 'pending') && (viewer.admin || g.agent === viewer.agent)) {
    return (
      <form method="post" action={`/console/grants/${g.id}/revoke`}>
        <Csrf viewer={viewer} />
        <button type="submit" class="danger">
          Revoke
        </button>
      </form>
    );
  }
  return <span />;
}

export function GrantRow(props: { g: PublicGrant; viewer: Viewer; now: number }) {
  const { g } = props;
  return (
    <tr id={`grant-${g.id}`} data-grant={g.id} data-status={g.status}>
      <td data-label="id">
        <a href={`/console/grants/${g.id}`}>
          <code>{g.id}</code>
        </a>
      </td>
      <td data-label="agent">{g.agent}</td>
      <td data-label="resource">{g.resource}</td>
      <td data-label="access">{g.access}</td>
      <td data-label="scope">
        <code>{compactJson(g.scope, 120)}</code>
      </td>
      <td data-label="task">{g.task}</td>
      <td data-label="time left">{g.status === 'pending' ? `${g.ttl} once approved` : g.status === 'active' ? timeLeft(g.expiresAt, props.now) : '—'}</td>
      <td data-label="status">
        <span class={`status ${g.status}`}>{g.status}</span>
      </td>
      <td data-label="">
        <Actions g={g} viewer={props.viewer} />
      </td>
    </tr>
  );
}

export function GrantTable(props: { grants: PublicGrant[]; viewer: Viewer; now: number; empty: string; label: string }) {
  if (props.grants.length === 0) return <p class="muted">{props.empty}</p>;
  return (
    <div class="scroll">
      <table aria-label={props.label}>
        <thead>
          <tr>
            <th>id</th>
            <th>agent</th>
            <th>resource</th>
            <th>access</th>
            <th>scope</th>
            <th>task</th>
            <th>time left</th>
            <th>status</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {props.grants.map((g) => (
            <GrantRow g={g} viewer={props.viewer} now={props.now} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function GrantsPage(props: { viewer: Viewer; data: GrantsPageData; notice?: string | undefined; error?: string | undefined }) {
  const { data, viewer } = props;
  const f = data.filter;
  const pages = Math.max(1, Math.ceil(data.historyTotal / data.pageSize));
  const link = (page: number) => `/console${query({ agent: f.agent, resource: f.resource, status: f.status, page: page > 1 ? page : undefined })}#history`;
  return (
    <Layout title="Grants" viewer={viewer} active="grants" notice={props.notice} error={props.error}>
      <section id="pending">
        <h2>Pending approval ({data.pending.length})</h2>
        <GrantTable grants={data.pending} viewer={viewer} now={data.now} empty="No grant is waiting for approval." label="pending grants" />
      </section>
      <section id="active">
        <h2>Active ({data.active.length})</h2>
        <GrantTable grants={data.active} viewer={viewer} now={data.now} empty="No active grant." label="active grants" />
      </section>
      <section id="history">
        <h2>History</h2>
        <form method="get" action="/console#history" class="filters">
          <label>
            agent <input type="text" name="agent" value={f.agent ?? ''} />
          </label>
          <label>
            resource <input type="text" name="resource" value={f.resource ?? ''} />
          </label>
          <label>
            status{' '}
            <select name="status">
              {['', 'pending', 'active', 'expired', 'revoked', 'denied'].map((s) => (
                <option value={s} selected={s === (f.status ?? '')}>
                  {s || 'any'}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Filter</button>
        </form>
        <GrantTable grants={data.history} viewer={viewer} now={data.now} empty="No grant matches." label="grant history" />
        <p class="pager">
          {f.page > 1 && <a href={link(f.page - 1)}>← Newer</a>} page {f.page} of {pages} ({data.historyTotal} grants){' '}
          {f.page < pages && <a href={link(f.page + 1)}>Older →</a>}
        </p>
      </section>
    </Layout>
  );
}

export function GrantPage(props: { viewer: Viewer; grant: PublicGrant; now: number; notice?: string | undefined; error?: string | undefined }) {
  const g = props.grant;
  return (
    <Layout title={`Grant ${g.id}`} viewer={props.viewer} active="grants" notice={props.notice} error={props.error}>
      <GrantTable grants={[g]} viewer={props.viewer} now={props.now} empty="" label="grant" />
      <dl class="facts">
        <dt>created</dt>
        <dd>{shortTime(g.createdAt)}</dd>
        <dt>approved</dt>
        <dd>{shortTime(g.approvedAt)}</dd>
        <dt>expires</dt>
        <dd>{shortTime(g.expiresAt)}</dd>
        <dt>revoked</dt>
        <dd>{shortTime(g.revokedAt)}</dd>
      </dl>
      {props.viewer.admin && (
        <p>
          <a href={`/console/audit${query({ grant: g.id })}`}>Audit records of this grant</a>
        </p>
      )}
    </Layout>
  );
}
