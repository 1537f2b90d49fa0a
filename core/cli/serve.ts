import { existsSync } from 'node:fs';
import type { RegisteredPlugin, RegisteredSink } from '../plugin.ts';
import { startGateway, type Gateway } from '../hub.ts';
import { parseDuration } from '../config/duration.ts';
import { CliError } from './errors.ts';

/** How long SIGTERM lets live sessions finish before cutting them (AIRLOCK_DRAIN_TIMEOUT overrides). */
const DEFAULT_DRAIN = '10s';

/**
 * `airlock serve [--config FILE]`: run until a signal. SIGTERM drains (docs/deployment.md:
 * /healthz 503, new sessions refused, live ones finish up to the bound, then cut); SIGINT
 * shuts down at once.
 */
export async function runServe(configPath: string, parts: { plugins: readonly RegisteredPlugin[]; sinks: readonly RegisteredSink[] }): Promise<Gateway> {
  if (!existsSync(configPath)) throw new CliError(`${configPath}: config file not found (use --config FILE, or \`airlock dev\` for the embedded default)`);
  const drainSetting = process.env.AIRLOCK_DRAIN_TIMEOUT ?? DEFAULT_DRAIN;
  const drainMs = parseDuration(drainSetting);
  if (drainMs === undefined) throw new CliError(`AIRLOCK_DRAIN_TIMEOUT "${drainSetting}" is not a duration like 30s`, 2);
  const gateway = await startGateway({ configPath, ...parts });
  stopOnSignals((signal) => (signal === 'SIGTERM' ? gateway.drain(drainMs) : gateway.close()));
  return gateway;
}

export function stopOnSignals(stop: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`airlock: ${signal}, ${signal === 'SIGTERM' ? 'draining' : 'shutting down'}\n`);
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`airlock: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
