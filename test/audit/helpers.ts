/** Shared set-up for audit tests: temp dirs, a gateway-like Ed25519 key, a silent logger. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { pino, type Logger } from 'pino';
import { AuditPipeline, type AuditPipelineOptions } from '../../core/audit/pipeline.ts';
import type { AuditRecord } from '../../core/plugin.ts';

export const silentLog: Logger = pino({ level: 'silent' });

export interface TestKey {
  privateKey: KeyObject;
  kid: string;
  publicJwk: JWK;
}

export function makeKey(kid = 'test-key'): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, kid, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid } };
}

/** Temp dirs removed by `cleanup()` (call it from `after`). */
export class TempDirs {
  private dirs: string[] = [];
  async make(prefix = 'airlock-audit-'): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }
  async cleanup(): Promise<void> {
    await Promise.all(this.dirs.map((d) => rm(d, { recursive: true, force: true })));
    this.dirs = [];
  }
}

export function openPipeline(
  dataDir: string,
  key: TestKey,
  extra: Partial<AuditPipelineOptions> = {},
): Promise<AuditPipeline> {
  return AuditPipeline.open({
    dataDir,
    durability: 'strict',
    gatewayId: 'gw-test',
    signingKey: { privateKey: key.privateKey, kid: key.kid },
    log: silentLog,
    ...extra,
  });
}

/** Spool segment files of a data dir, oldest first. */
export async function spoolSegments(dataDir: string): Promise<string[]> {
  const dir = join(dataDir, 'spool');
  return (await readdir(dir)).filter((n) => /^\d{12}\.jsonl$/.test(n)).sort().map((n) => join(dir, n));
}

export async function readJsonl(path: string): Promise<AuditRecord[]> {
  // A spool segment being written (or left by a kill) ends in preallocated NUL bytes.
  const text = (await readFile(path, 'utf8')).replace(/\0+$/, '');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditRecord);
}

export async function spoolRecords(dataDir: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (const f of await spoolSegments(dataDir)) out.push(...(await readJsonl(f)));
  return out;
}

/** Appends `n` ordinary records and waits until they are durable. */
export async function appendMany(p: AuditPipeline, n: number, tag = 'r'): Promise<number[]> {
  const receipts = [];
  for (let i = 0; i < n; i++) {
    receipts.push(p.append({ type: 'pg.query', agent: 'local:bot', grant: 'AG1', session: 's_1', resource: 'db', data: { sql: `select ${i}`, tag }, outcome: 'ok' }));
  }
  await Promise.all(receipts.map((r) => r.durable));
  return receipts.map((r) => r.seq);
}
