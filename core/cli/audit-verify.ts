/**
 * `airlock audit verify FILE... [--key FILE]... [--data-dir DIR]`
 *
 * Checks the hash chain and signed checkpoints of audit output (file sink, S3 sink
 * `.jsonl.gz`, spool segments). Public keys come from `--key` (a JWK or a JWKS file),
 * else `<data-dir>/keys/gateway.pub.jwk` (data dir default `./.airlock`).
 * Prints one line. Exit 0 intact, 1 tampered or gap, 2 usage error.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { verifyAuditFiles, VerifyInputError, type VerifyResult } from '../audit/verify.ts';

const USAGE = 'usage: airlock audit verify FILE... [--key JWK_OR_JWKS_FILE]... [--data-dir DIR]';

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
    const result = await verifyAuditFiles(parsed.files, { publicKeys: keys });
    out(summarize(result));
    return result.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof UsageError || e instanceof VerifyInputError) {
      err(`airlock audit verify: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

function parseArgs(args: string[]): { files: string[]; keyFiles: string[]; dataDir: string; help: boolean } {
  const files: string[] = [];
  const keyFiles: string[] = [];
  let dataDir = './.airlock';
  let help = false;
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
    else if (flag === '--help' || flag === '-h') help = true;
    else if (flag === '--') files.push(...args.slice(i + 1)), (i = args.length);
    else if (flag.startsWith('-') && flag !== '-') throw new UsageError(`unknown option ${flag}. ${USAGE}`);
    else files.push(arg);
  }
  if (!help && files.length === 0) throw new UsageError(`no audit files given. ${USAGE}`);
  return { files, keyFiles, dataDir, help };
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
  if (r.unsignedTail > 0 && r.checkpoints > 0) parts.push(`${r.unsignedTail} records after the last checkpoint`);
  return parts.join(', ');
}
