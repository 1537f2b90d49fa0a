/**
 * The `airlock` command line (docs/contract.md "CLI", CONTRACT). Each command prints its result on
 * stdout, or one human-readable line on stderr and exits non-zero.
 */
import { parseArgs } from 'node:util';
import type { RegisteredPlugin, RegisteredSink } from '../plugin.ts';
import { ConfigError } from '../config/load.ts';
import { CliError } from './errors.ts';
import { runServe } from './serve.ts';
import { runToken } from './token.ts';
import { runApprove, runDeny, runGrant, runRevoke } from './grant.ts';

export interface CliParts {
  plugins: readonly RegisteredPlugin[];
  sinks: readonly RegisteredSink[];
  /** `airlock dev`, supplied by the entry point (it knows the embedded upstreams). */
  dev: () => Promise<void>;
  /** `airlock audit verify`, returns the exit code. */
  auditVerify: (args: string[]) => Promise<number>;
}

const USAGE = `usage:
  airlock serve  [--config FILE]
  airlock dev
  airlock token  --agent NAME [--ttl 1h] [--config FILE]
  airlock grant  --resource R --access A [--scope k=v,...] --ttl 5m --task "why"
                 [--gateway URL] [--token JWT] [--format env|json]
  airlock revoke GRANT_ID [--gateway URL] [--token JWT]
  airlock approve GRANT_ID [--gateway URL] [--token ADMIN_JWT]
  airlock deny GRANT_ID --reason "why" [--gateway URL] [--token ADMIN_JWT]
  airlock audit verify FILE... [--key FILE] [--data-dir DIR]`;

export async function runCli(argv: string[], parts: CliParts): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        const { values } = parse(rest, { config: { type: 'string', default: './airlock.yaml' } });
        await runServe(String(values.config), parts);
        return -1; // keep running
      }
      case 'dev':
        parse(rest, {});
        await parts.dev();
        return -1;
      case 'token': {
        const { values } = parse(rest, { agent: { type: 'string' }, ttl: { type: 'string', default: '1h' }, config: { type: 'string', default: './airlock.yaml' } });
        process.stdout.write((await runToken({ agent: values.agent as string | undefined, ttl: String(values.ttl), config: String(values.config) }, parts)) + '\n');
        return 0;
      }
      case 'grant': {
        const { values } = parse(rest, {
          resource: { type: 'string' },
          access: { type: 'string' },
          scope: { type: 'string' },
          ttl: { type: 'string' },
          task: { type: 'string' },
          gateway: { type: 'string', default: process.env.AIRLOCK_GATEWAY ?? 'http://127.0.0.1:8080' },
          token: { type: 'string' },
          format: { type: 'string', default: 'env' },
        });
        const out = await runGrant({
          resource: values.resource as string | undefined,
          access: values.access as string | undefined,
          scope: values.scope as string | undefined,
          ttl: values.ttl as string | undefined,
          task: values.task as string | undefined,
          gateway: String(values.gateway),
          token: (values.token as string | undefined) ?? process.env.AIRLOCK_TOKEN,
          format: String(values.format),
        });
        process.stdout.write(out + '\n');
        return 0;
      }
      case 'revoke': {
        const { values, positionals } = parse(rest, { gateway: { type: 'string', default: process.env.AIRLOCK_GATEWAY ?? 'http://127.0.0.1:8080' }, token: { type: 'string' } }, true);
        process.stdout.write((await runRevoke(positionals[0], String(values.gateway), (values.token as string | undefined) ?? process.env.AIRLOCK_TOKEN)) + '\n');
        return 0;
      }
      case 'approve': {
        const { values, positionals } = parse(rest, { gateway: { type: 'string', default: process.env.AIRLOCK_GATEWAY ?? 'http://127.0.0.1:8080' }, token: { type: 'string' } }, true);
        process.stdout.write((await runApprove(positionals[0], String(values.gateway), (values.token as string | undefined) ?? process.env.AIRLOCK_TOKEN)) + '\n');
        return 0;
      }
      case 'deny': {
        const { values, positionals } = parse(rest, { gateway: { type: 'string', default: process.env.AIRLOCK_GATEWAY ?? 'http://127.0.0.1:8080' }, token: { type: 'string' }, reason: { type: 'string' } }, true);
        process.stdout.write((await runDeny(positionals[0], values.reason as string | undefined, String(values.gateway), (values.token as string | undefined) ?? process.env.AIRLOCK_TOKEN)) + '\n');
        return 0;
      }
      case 'audit':
        if (rest[0] !== 'verify') throw new CliError('usage: airlock audit verify FILE...', 2);
        return await parts.auditVerify(rest.slice(1));
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      default:
        throw new CliError(`unknown command "${command}"\n${USAGE}`, 2);
    }
  } catch (e) {
    if (e instanceof CliError || e instanceof ConfigError) {
      process.stderr.write(`airlock: ${e.message}\n`);
      return e instanceof CliError ? e.exitCode : 1;
    }
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') {
      process.stderr.write(`airlock: cannot listen: address in use (${(err as { address?: string }).address ?? ''}:${(err as { port?: number }).port ?? ''})\n`);
      return 1;
    }
    process.stderr.write(`airlock: ${err.message ?? String(e)}\n`);
    return 1;
  }
}

function parse(args: string[], options: NonNullable<Parameters<typeof parseArgs>[0]>['options'], allowPositionals = false) {
  try {
    return parseArgs({ args, options: options ?? {}, allowPositionals, strict: true });
  } catch (e) {
    throw new CliError(`${(e as Error).message.split('\n')[0]}`, 2);
  }
}
