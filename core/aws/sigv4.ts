/**
 * The SigV4 arithmetic shared by the inbound verifier and the outbound signer (AWS
 * "Signature Version 4 signing process"): canonical request, string to sign, the derived
 * signing key (cached: four HMACs per secret, day, region and service, not per request).
 */
import { createHmac, hash } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** One-shot: no Hash object per call (half the cost for a short input, measured). */
export function sha256Hex(data: Uint8Array | string): string {
  return hash('sha256', data, 'hex');
}

/** Inside a value, what canonicalisation would change: a line break, a tab, two spaces. */
const NOT_CANONICAL = /[\r\n\t]| {2}/;

/** Header value as SigV4 canonicalises it: line breaks to spaces, runs of blanks to one, trimmed. */
export function canonicalHeaderValue(value: string): string {
  // Nearly every value is already canonical: one test instead of two replaces and a trim.
  if (!NOT_CANONICAL.test(value) && value.trim() === value) return value;
  return value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim();
}

/** `yyyymmddThhmmssZ` of a date. */
export function amzDate(date: Date): string {
  const iso = date.toISOString(); // 2026-12-01T16:37:09.123Z
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
}

/**
 * The canonical request: method, canonical URI, canonical query, `name:value\n` per signed
 * header (names lower-case and sorted, values canonical), the signed header list, the
 * payload hash.
 */
export function canonicalRequest(method: string, path: string, query: string, names: readonly string[], values: readonly string[], payloadHash: string): string {
  let headers = '';
  for (let i = 0; i < names.length; i++) headers += names[i] + ':' + values[i] + '\n';
  return method + '\n' + path + '\n' + query + '\n' + headers + '\n' + names.join(';') + '\n' + payloadHash;
}

export function stringToSign(longDate: string, scope: string, canonical: string): string {
  return ALGORITHM + '\n' + longDate + '\n' + scope + '\n' + sha256Hex(canonical);
}

export function deriveSigningKey(secret: string, shortDate: string, region: string, service: string): Buffer {
  const kDate = createHmac('sha256', 'AWS4' + secret).update(shortDate).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  return createHmac('sha256', kService).update('aws4_request').digest();
}

export function signatureHex(key: Buffer, toSign: string): string {
  return createHmac('sha256', key).update(toSign).digest('hex');
}

/**
 * Derived keys by credential, day, region and service; bounded, the oldest dropped first.
 * The map key includes the secret (only in memory, as the credentials object holds it):
 * a key id alone would hand out a stale key if the secret behind an id ever changed.
 */
export class SigningKeyCache {
  private readonly keys = new Map<string, Buffer>();
  constructor(private readonly max = 256) {}

  get(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined }, shortDate: string, region: string, service: string): Buffer {
    const id = credentials.accessKeyId + '\0' + credentials.secretAccessKey + '\0' + (credentials.sessionToken ?? '') + '\0' + shortDate + '\0' + region + '\0' + service;
    let key = this.keys.get(id);
    if (key === undefined) {
      if (this.keys.size >= this.max) {
        const oldest = this.keys.keys().next().value;
        if (oldest !== undefined) this.keys.delete(oldest);
      }
      key = deriveSigningKey(credentials.secretAccessKey, shortDate, region, service);
      this.keys.set(id, key);
    }
    return key;
  }

  clear(): void {
    this.keys.clear();
  }
}
