/** What `/metrics` shows about the store: revision lag, view age, connection. */
import type { MetricSample } from '../metrics/prometheus.ts';
import type { StoreStatus } from './watchdog.ts';

export function storeMetrics(s: StoreStatus): MetricSample[] {
  return [
    { name: 'airlock_store_connected', help: '1 when the store answers (PostgreSQL: the change listener is connected).', type: 'gauge', values: [{ labels: { type: s.type }, value: s.connected ? 1 : 0 }] },
    { name: 'airlock_store_revision', help: 'The last store revision this replica applied.', type: 'gauge', values: [{ value: s.revision }] },
    { name: 'airlock_store_revision_lag', help: 'Newest revision heard of minus the last applied.', type: 'gauge', values: [{ value: Math.max(0, s.headRevision - s.revision) }] },
    // -1: never confirmed (a gauge cannot be infinite in every scraper).
    { name: 'airlock_store_view_age_seconds', help: 'Time since this replica last confirmed its view of the store is complete.', type: 'gauge', values: [{ value: s.viewAgeMs === null ? -1 : s.viewAgeMs / 1000 }] },
  ];
}
