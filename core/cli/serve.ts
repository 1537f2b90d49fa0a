import { existsSync } from 'node:fs';
import type { RegisteredPlugin, RegisteredSink } from '../plugin.ts';
import { startGateway, type Gateway } from '../hub.ts';
import { CliError } from './errors.ts';

/** `airlock serve [--config FILE]`: run until SIGINT/SIGTERM, then shut down cleanly. */
export async function runServe(configPath: string, parts: { plugins: readonly RegisteredPlugin[]; sinks: readonly RegisteredSink[] }): Promise<Gateway> {
  if (!existsSync(configPath)) throw new CliError(`${configPath}: config file not found (use --config FILE, or \`airlock dev\` for the embedded default)`);
  const gateway = await startGateway({ configPath, ...parts });
  stopOnSignals(() => gateway.close());
  return gateway;
}

export function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`airlock: ${signal}, shutting down\n`);
    stop().then(
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
