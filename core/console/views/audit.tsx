/** The audit log with filters and paging, and the chain's verification state. */
import type { AuditRecord } from '../../plugin.ts';
import type { ChainStatus } from '../chain-state.ts';
import { Layout, type Viewer } from './layout.tsx';
import { compactJson, query, shortTime } from './format.ts';

export interface AuditFilterForm {
  agent?: string | undefined;
  grant?: string | undefined;
  resource?: string | undefined;
  type?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

function ChainBox(props: { chain: ChainStatus; head: number | undefined }) {
  const c = props.chain;
  if (c.failure) {
    return (
      <p class="chain broken" id="chain-state" data-state="broken">
        Chain BROKEN at seq {c.failure.seq}: {c.failure.reason}
      </p>
    );
  }
  return (
    <p class="chain ok" id="chain-state" data-state="intact">
      Chain intact: {c.records} records verified (seq {c.firstSeq ?? '—'}–{c.lastSeq ?? '—'}
      {c.fromGenesis ? ', from genesis' : ''}), {c.checkpoints} signed checkpoints, last at seq {c.lastCheckpointSeq ?? '—'} ({shortTime(c.lastCheckpointTs)}); {c.unsignedTail} records since. Head seq {props.head ?? '—'}.
    </p>
  );
}

export function AuditPage(props: { viewer: Viewer; filter: AuditFilterForm; records: AuditRecord[]; older: number | undefined; chain: ChainStatus; head: number | undefined; error?: string | undefined }) {
  const f = props.filter;
  const field = (name: keyof AuditFilterForm, label: string, placeholder = '') => (
    <label>
      {label} <input type="text" name={name} value={f[name] ?? ''} placeholder={placeholder} />
    </label>
  );
  return (
    <Layout title="Audit log" viewer={props.viewer} active="audit" error={props.error}>
      <ChainBox chain={props.chain} head={props.head} />
      <form method="get" action="/console/audit" class="filters">
        {field('agent', 'agent')}
        {field('grant', 'grant')}
        {field('resource', 'resource')}
        {field('type', 'type', 'e.g. pg.query')}
        {field('since', 'from', '2026-12-01T10:00Z')}
        {field('until', 'to', '2026-12-01T11:00Z')}
        <button type="submit">Filter</button>
      </form>
      {props.records.length === 0 ? (
        <p class="muted">No record matches.</p>
      ) : (
        <div class="scroll">
          <table aria-label="audit records">
            <thead>
              <tr>
                <th>seq</th>
                <th>time</th>
                <th>type</th>
                <th>outcome</th>
                <th>agent</th>
                <th>grant</th>
                <th>resource</th>
                <th>session</th>
                <th>data</th>
              </tr>
            </thead>
            <tbody>
              {props.records.map((r) => (
                <tr data-seq={r.seq} data-type={r.type}>
                  <td data-label="seq">{r.seq}</td>
                  <td data-label="time">{shortTime(r.ts)}</td>
                  <td data-label="type">{r.type}</td>
                  <td data-label="outcome">
                    <span class={`outcome ${r.outcome}`}>{r.outcome}</span>
                  </td>
                  <td data-label="agent">{r.agent ?? ''}</td>
                  <td data-label="grant">{r.grant ? <a href={`/console/grants/${r.grant}`}>{r.grant}</a> : ''}</td>
                  <td data-label="resource">{r.resource ?? ''}</td>
                  <td data-label="session">{r.session ? <a href={`/console/sessions/${r.session}`}>{r.session}</a> : ''}</td>
                  <td data-label="data">
                    <code>{compactJson(r.data, 300)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p class="pager">
        <a href={`/console/audit${query({ ...f })}`}>Newest</a>
        {props.older !== undefined && (
          <>
            {' '}
            · <a href={`/console/audit${query({ ...f, before: props.older })}`}>Older →</a>
          </>
        )}
      </p>
    </Layout>
  );
}
