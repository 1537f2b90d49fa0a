/** SCRAM-SHA-256 primitives shared by the server side (clients → airlock) and client side (airlock → upstream). RFC 5802 / 7677. */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ProtocolViolation } from '../wire/buffer-reader.ts';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';
export const TLS_SERVER_END_POINT = 'tls-server-end-point';

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new ProtocolViolation('SCRAM: proof has the wrong length');
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `k=v,k=v` attributes in order; values may contain '=' (base64) but not ','. */
export function parseAttributes(text: string, what: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const part of text.split(',')) {
    if (part.length < 2 || part[1] !== '=' || !/^[a-zA-Z]$/.test(part[0]!)) {
      throw new ProtocolViolation(`SCRAM: malformed ${what}`);
    }
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}

/** A SCRAM nonce: printable ASCII except ','. */
export function isValidNonce(n: string): boolean {
  return n.length > 0 && /^[\x21-\x2b\x2d-\x7e]+$/.test(n);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeBase64Strict(s: string, what: string): Buffer {
  if (!BASE64.test(s) || s.length % 4 !== 0) throw new ProtocolViolation(`SCRAM: ${what} is not base64`);
  return Buffer.from(s, 'base64');
}
