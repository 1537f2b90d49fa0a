/** Starts one notifier per `notify:` target and reports their counters for /metrics. */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CursorStore } from '../audit/cursors.ts';
import type { MetricSample } from '../metrics/prometheus.ts';
import type { NotifyTargetConfig } from './schema.ts';
import { createTarget } from './targets.ts';
import { Notifier } from './notifier.ts';
import type { GrantFacts } from './payload.ts';

export interface Notifications {
  metrics(): MetricSample[];
  close(): Promise<void>;
}

export async function startNotifications(parts: {
  targets: readonly NotifyTargetConfig[];
  dataDir: string;
  gatewayId: string;
  headSeq: () => number;
  grant: (id: string) => GrantFacts | undefined;
  consoleBase: () => string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  tuning?: { retryBaseMs?: number; retryMaxMs?: number; pollMs?: number; giveUpMs?: number };
}): Promise<Notifications> {
  // Targets are built first so a missing secret fails the start before anything runs.
  const targets = parts.targets.map((t, i) => createTarget(t, i, parts.env));
  const cursors = new CursorStore(join(parts.dataDir, 'notify'));
  await cursors.init();
  const notifiers = targets.map(
    (target) =>
      new Notifier({
        target,
        spoolDir: join(parts.dataDir, 'spool'),
        cursors,
        headSeq: parts.headSeq,
        gatewayId: parts.gatewayId,
        grant: parts.grant,
        consoleBase: parts.consoleBase,
        log: parts.log.child({ part: 'notify', target: target.id }),
        ...parts.tuning,
      }),
  );
  for (const n of notifiers) await n.start();
  return {
    metrics: () => [
      {
        name: 'airlock_notify_deliveries_total',
        help: 'Notification delivery attempts by target and outcome since start.',
        type: 'counter',
        values: notifiers.flatMap((n) => [
          { labels: { target: n.id, outcome: 'sent' }, value: n.sent },
          { labels: { target: n.id, outcome: 'failed' }, value: n.failed },
        ]),
      },
      { name: 'airlock_notify_dropped_total', help: 'Events given up after failing for too long, per target.', type: 'counter', values: notifiers.map((n) => ({ labels: { target: n.id }, value: n.dropped })) },
    ],
    close: async () => {
      await Promise.all(notifiers.map((n) => n.stop()));
    },
  };
}
