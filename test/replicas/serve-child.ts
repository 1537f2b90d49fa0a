/**
 * `airlock serve` (runServe: SIGTERM drains) with the registered plugins, as a child
 * process for the replica tests. Prints one JSON line once it listens.
 */
import { plugins } from '../../plugins/index.ts';
import { sinks } from '../../audit-sinks/index.ts';
import { runServe } from '../../core/cli/serve.ts';

const configPath = process.argv[2];
if (!configPath) throw new Error('usage: serve-child.ts CONFIG');
const gateway = await runServe(configPath, { plugins, sinks });
process.stdout.write(JSON.stringify({ url: gateway.url, gatewayId: gateway.identity.gatewayId, listening: gateway.listening }) + '\n');
