/**
 * Grant ids, secrets and the verifiers kept in their place. The secret is shown once and
 * never stored: we keep a SHA-256 for bearer use, a SCRAM-SHA-256 verifier for Postgres,
 * and per-date SigV4 keys (kDate) for AWS-style signing — each useless after expiry.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { CredentialKind } from '../plugin.ts';

const pbkdf2Async = promisify(pbkdf2);

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * `AG` + 18 base32 characters (90 bits): upper-case letters and digits, 20 characters,
 * valid as a Postgres user name and shaped like an AWS access key id.
 */
export function newGrantId(): string {
  const bytes = randomBytes(18);
  let id = 'AG';
  for (const b of bytes) id += BASE32[b & 31];
  return id;
}

export const GRANT_ID_PATTERN = /^AG[A-Z2-7]{18}$/;

/** 240 bits of randomness, 40 URL-safe characters (safe in a Postgres URL and an AWS secret). */
export function newGrantSecret(): string {
  return randomBytes(30).toString('base64url');
}

export interface StoredScram {
  salt: string; // base64
  iterations: number;
  storedKey: string; // base64
  serverKey: string; // base64
}

/** Only the verifiers the resource type's plugin uses are kept (and paid for). */
export interface GrantVerifiers {
  /** hex sha256 of the secret, for bearer credentials. */
  sha256?: string;
  scram?: StoredScram;
  /** UTC date (yyyymmdd) -> hex HMAC("AWS4"+secret, date). */
  sigv4?: Record<string, string>;
}

export const SCRAM_ITERATIONS = 4096;

export async function makeVerifiers(secret: string, kinds: ReadonlySet<CredentialKind>, sigv4Dates: readonly string[]): Promise<GrantVerifiers> {
  const verifiers: GrantVerifiers = {};
  if (kinds.has('bearer')) verifiers.sha256 = createHash('sha256').update(secret).digest('hex');
  if (kinds.has('scram')) {
    // PBKDF2 on the thread pool: the event loop keeps serving sessions meanwhile.
    const salt = randomBytes(16);
    const salted = await pbkdf2Async(secret, salt, SCRAM_ITERATIONS, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();
    verifiers.scram = { salt: salt.toString('base64'), iterations: SCRAM_ITERATIONS, storedKey: storedKey.toString('base64'), serverKey: serverKey.toString('base64') };
  }
  if (kinds.has('sigv4')) {
    const sigv4: Record<string, string> = {};
    for (const d of sigv4Dates) sigv4[d] = createHmac('sha256', `AWS4${secret}`).update(d).digest('hex');
    verifiers.sigv4 = sigv4;
  }
  return verifiers;
}

/** Every UTC date (yyyymmdd) touched by [from, to]. */
export function utcDatesBetween(fromMs: number, toMs: number): string[] {
  const dates: string[] = [];
  const day = 86_400_000;
  for (let t = Math.floor(fromMs / day) * day; t <= toMs; t += day) dates.push(new Date(t).toISOString().slice(0, 10).replaceAll('-', ''));
  return dates;
}

export function sigv4KeyFromDateKey(kDateHex: string, region: string, service: string): Buffer {
  const kRegion = createHmac('sha256', Buffer.from(kDateHex, 'hex')).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  return createHmac('sha256', kService).update('aws4_request').digest();
}

export function secretMatchesSha256(secret: string, expectedHex: string): boolean {
  const got = createHash('sha256').update(secret).digest();
  const want = Buffer.from(expectedHex, 'hex');
  return want.length === got.length && timingSafeEqual(got, want);
}

/** A deterministic verifier for unknown users, so an exchange fails only at the end. */
export function decoyScram(name: string, pepper: Buffer): { salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer } {
  const h = (label: string) => createHmac('sha256', pepper).update(`${label}:${name}`).digest();
  return { salt: h('salt').subarray(0, 16), iterations: SCRAM_ITERATIONS, storedKey: h('stored'), serverKey: h('server') };
}
