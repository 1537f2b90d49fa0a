/** What `/metrics` shows: grants by outcome, live sessions, audit spool and sink health. */
import type { MetricSample } from '../metrics/prometheus.ts';
import type { GrantService } from '../grants/service.ts';
import type { SessionRegistry } from '../sessions/registry.ts';

export interface AuditMetricsSource {
  metrics(): {
    lastSeq: number;
    spoolBytes: number;
    spoolDepth: number;
    writes: number;
    fsyncs: number;
    sinks: Array<{ id: string; cursor: number; lag: number; failures: number }>;
  };
  readonly full: boolean;
}

export function gatewayMetrics(grants: GrantService, sessions: SessionRegistry, audit: AuditMetricsSource, authFailures: () => number): MetricSample[] {
  const g = grants.metrics();
  const a = audit.metrics();
  return [
    {
      name: 'airlock_grants_total',
      help: 'Grant requests by outcome since start.',
      type: 'counter',
      values: (['issued', 'pending', 'denied', 'approved', 'revoked', 'expired'] as const).map((outcome) => ({ labels: { outcome }, value: g[outcome] })),
    },
    { name: 'airlock_grants_active', help: 'Grants currently active.', type: 'gauge', values: [{ value: g.active }] },
    { name: 'airlock_grants_pending', help: 'Grants waiting for approval.', type: 'gauge', values: [{ value: g.pending }] },
    { name: 'airlock_sessions_live', help: 'Live sessions.', type: 'gauge', values: [{ value: sessions.liveCount }] },
    { name: 'airlock_auth_failures_total', help: 'Failed control-API authentications since start.', type: 'counter', values: [{ value: authFailures() }] },
    { name: 'airlock_audit_last_seq', help: 'Sequence number of the last audit record.', type: 'gauge', values: [{ value: a.lastSeq }] },
    { name: 'airlock_audit_spool_bytes', help: 'Bytes held in the audit spool.', type: 'gauge', values: [{ value: a.spoolBytes }] },
    { name: 'airlock_audit_spool_depth', help: 'Records not yet delivered to the slowest sink.', type: 'gauge', values: [{ value: a.spoolDepth }] },
    { name: 'airlock_audit_spool_writes_total', help: 'Batched writes to the audit spool since start.', type: 'counter', values: [{ value: a.writes }] },
    { name: 'airlock_audit_spool_fsyncs_total', help: 'fdatasync calls on the audit spool since start (group commit: one serves many records).', type: 'counter', values: [{ value: a.fsyncs }] },
    { name: 'airlock_audit_spool_full', help: '1 when the spool is full and new sessions are refused.', type: 'gauge', values: [{ value: audit.full ? 1 : 0 }] },
    { name: 'airlock_audit_sink_lag', help: 'Records behind, per sink.', type: 'gauge', values: a.sinks.map((s) => ({ labels: { sink: s.id }, value: s.lag })) },
    { name: 'airlock_audit_sink_failures_total', help: 'Failed deliveries, per sink.', type: 'counter', values: a.sinks.map((s) => ({ labels: { sink: s.id }, value: s.failures })) },
  ];
}
