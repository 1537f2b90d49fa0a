/**
 * `airlock audit verify FILE... [--key FILE]... [--data-dir DIR] [--checkpoint-interval D]
 *  [--gateway URL --token ADMIN_JWT]`
 *
 * Checks the hash chain and signed checkpoints of audit output (file sink, S3 sink
 * `.jsonl.gz`, spool segments), and that no stretch of record time longer than the
 * gateway's checkpoint interval goes without a signed checkpoint after it. Public keys come
 * from `--key` (a JWK or a JWKS file), else `<data-dir>/keys/gateway.pub.jwk` (data dir
 * default `./.airlock`). With `--gateway`, the log's end is compared with the live
 * gateway's signed head (`GET /v1/audit/head`): a log that ends before it, or differs
 * from it, is reported. Prints one line (two with `--gateway`). Exit 0 intact, 1
 * tampered or gap, 2 usage error.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { verifyAuditFiles, VerifyInputError, formatMs, type VerifyResult } from '../audit/verify.ts';
import { parseDuration } from '../config/duration.ts';
import { compareWithLiveHead, fetchLiveHead } from './audit-live-head.ts';
import { groupByChain, UNNAMED_CHAIN } from './audit-chains.ts';

const USAGE =
  'usage: airlock audit verify FILE... [--key JWK_OR_JWKS_FILE]... [--data-dir DIR] [--checkpoint-interval 60s] [--gateway URL --token ADMIN_JWT]';

class UsageError extends Error {}

export async function runAuditVerify(
  args: string[],
  out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  err: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<number> {
  try {
    const parsed = parseArgs(args);
    if (parsed.help) {
      out(USAGE);
      return 0;
    }
    const keys = await loadKeys(parsed.keyFiles.length > 0 ? parsed.keyFiles : [join(parsed.dataDir, 'keys', 'gateway.pub.jwk')], parsed.keyFiles.length === 0);
    const options = { publicKeys: keys, ...(parsed.intervalMs !== undefined ? { checkpointIntervalMs: parsed.intervalMs } : {}) };
    const chains = await groupByChain(parsed.files);
    if (chains.size > 1) {
      // Several replicas' files: one line per chain (gateway id), each verified on its own.
      if (parsed.gateway !== undefined) throw new UsageError(`--gateway compares one chain with its live gateway; these files hold ${chains.size} chains. ${USAGE}`);
      let ok = true;
      for (const [gatewayId, files] of chains) {
        const r = await verifyAuditFiles(files, { ...options, ...(gatewayId !== UNNAMED_CHAIN ? { gatewayId } : {}) });
        ok &&= r.ok;
        out(`${gatewayId || '(files naming no gateway)'}: ${summarize(r)}`);
      }
      return ok ? 0 : 1;
    }
    const result = await verifyAuditFiles(parsed.files, options);
    out(summarize(result));
    if (!result.ok || parsed.gateway === undefined) return result.ok ? 0 : 1;
    const live = await fetchLiveHead(parsed.gateway, parsed.token!, result.lastSeq, keys);
    const verdict = compareWithLiveHead(result, live);
    out(verdict.line);
    return verdict.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof UsageError || e instanceof VerifyInputError) {
      err(`airlock audit verify: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

interface ParsedArgs {
  files: string[];
  keyFiles: string[];
  dataDir: string;
  help: boolean;
  intervalMs?: number | undefined;
  gateway?: string | undefined;
  token?: string | undefined;
}

function parseArgs(args: string[]): ParsedArgs {
  const files: string[] = [];
  const keyFiles: string[] = [];
  let dataDir = './.airlock';
  let help = false;
  let intervalMs: number | undefined;
  let gateway: string | undefined;
  let token: string | undefined = process.env.AIRLOCK_TOKEN || undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value. ${USAGE}`);
      return v;
    };
    if (flag === '--key') keyFiles.push(value());
    else if (flag === '--data-dir') dataDir = value();
    else if (flag === '--checkpoint-interval') {
      const text = value();
      intervalMs = parseDuration(text);
      if (intervalMs === undefined) throw new UsageError(`--checkpoint-interval: ${JSON.stringify(text)} is not a duration like 60s. ${USAGE}`);
    } else if (flag === '--gateway') gateway = value();
    else if (flag === '--token') token = value();
    else if (flag === '--help' || flag === '-h') help = true;
    else if (flag === '--') files.push(...args.slice(i + 1)), (i = args.length);
    else if (flag.startsWith('-') && flag !== '-') throw new UsageError(`unknown option ${flag}. ${USAGE}`);
    else files.push(arg);
  }
  if (!help && files.length === 0) throw new UsageError(`no audit files given. ${USAGE}`);
  if (gateway !== undefined && token === undefined) throw new UsageError(`--gateway needs --token ADMIN_JWT (or $AIRLOCK_TOKEN). ${USAGE}`);
  return { files, keyFiles, dataDir, help, intervalMs, gateway, token };
}

async function loadKeys(paths: string[], isDefault: boolean): Promise<JWK[]> {
  const keys: JWK[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new UsageError(
        isDefault
          ? `no public key: ${path} is not readable (${code}); pass --key FILE or --data-dir DIR`
          : `cannot read key file ${path}: ${code}`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new UsageError(`key file ${path} is not JSON`);
    }
    const list = Array.isArray((parsed as { keys?: unknown }).keys) ? (parsed as { keys: unknown[] }).keys : [parsed];
    for (const k of list) {
      const jwk = k as JWK;
      if (jwk === null || typeof jwk !== 'object' || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
        throw new UsageError(`key file ${path} holds a key that is not an Ed25519 JWK`);
      }
      if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new UsageError(`key file ${path} holds a key without kid`);
      // Only the public part is needed; never carry a private key further than this.
      keys.push({ kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: jwk.kid });
    }
  }
  if (keys.length === 0) throw new UsageError('no public key found');
  return keys;
}

export function summarize(r: VerifyResult): string {
  if (!r.ok && r.failure) {
    const f = r.failure;
    return `TAMPERED: ${f.file}:${f.line}${f.seq !== undefined ? ` seq ${f.seq}` : ''}: ${f.reason}`;
  }
  const parts = [`ok: ${r.records} records`];
  if (r.records > 0) parts[0] += `, seq ${r.firstSeq}..${r.lastSeq}${r.fromGenesis ? '' : ' (not from genesis)'}`;
  parts.push(`${r.checkpoints} checkpoints verified`);
  if (r.duplicates > 0) parts.push(`${r.duplicates} duplicates ignored`);
  if (r.unsignedTail > 0) {
    const span = r.unsignedTailSpanMs !== undefined ? ` spanning ${formatMs(r.unsignedTailSpanMs)} (${r.unsignedTailFrom} to ${r.unsignedTailTo})` : '';
    parts.push(`unsigned tail: ${r.unsignedTail} records after the last checkpoint${span}`);
  }
  return parts.join(', ');
}
