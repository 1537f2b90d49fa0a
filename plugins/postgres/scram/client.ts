/**
 * Client side of SCRAM-SHA-256 (airlock logging in to the upstream server with a configured
 * password). The salted password is derived with async PBKDF2 so the event loop keeps serving
 * other sessions, and cached per (password, salt, iterations) so reconnects cost a few HMACs.
 * The server's final signature is verified: a server that does not know the password is refused.
 */
import { createHash, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { AirlockError, ErrorCodes } from '../../../core/errors.ts';
import { constantTimeEqual, decodeBase64Strict, hmac, isValidNonce, parseAttributes, sha256, xor } from './common.ts';

const pbkdf2Async = promisify(pbkdf2);
const saltedCache = new Map<string, Buffer>();
const SALTED_CACHE_MAX = 64;

async function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const key = createHash('sha256').update(password).update('\0').update(salt).update(String(iterations)).digest('base64');
  const hit = saltedCache.get(key);
  if (hit) return hit;
  // SASLprep is skipped: it changes only non-ASCII passwords, which configured passwords here are not expected to be.
  const salted = await pbkdf2Async(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  if (saltedCache.size >= SALTED_CACHE_MAX) saltedCache.delete(saltedCache.keys().next().value!);
  saltedCache.set(key, salted);
  return salted;
}

function upstreamAuthError(message: string): AirlockError {
  return new AirlockError(ErrorCodes.UPSTREAM_FAILED, `upstream SCRAM: ${message}`);
}

export class ScramClientExchange {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private readonly clientFirstBare = `n=*,r=${this.clientNonce}`;
  private expectedServerSignature: Buffer | null = null;

  constructor(private readonly password: string) {}

  clientFirstMessage(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`);
  }

  async clientFinalMessage(serverFirst: Buffer): Promise<Buffer> {
    const serverFirstText = serverFirst.toString('utf8');
    let attrs: Array<[string, string]>;
    try {
      attrs = parseAttributes(serverFirstText, 'server-first-message');
    } catch {
      throw upstreamAuthError('malformed server-first-message');
    }
    const get = (k: string): string | undefined => attrs.find(([n]) => n === k)?.[1];
    const nonce = get('r');
    const saltB64 = get('s');
    const iterations = Number(get('i'));
    if (!nonce || !isValidNonce(nonce) || !nonce.startsWith(this.clientNonce) || nonce === this.clientNonce) throw upstreamAuthError('invalid server nonce');
    if (!saltB64 || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) throw upstreamAuthError('invalid salt or iteration count');
    const salt = decodeBase64Strict(saltB64, 'salt');
    const salted = await saltedPassword(this.password, salt, iterations);
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = sha256(clientKey);
    const serverKey = hmac(salted, 'Server Key');
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirstText},${withoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  verifyServerFinal(serverFinal: Buffer): void {
    const text = serverFinal.toString('utf8');
    if (!text.startsWith('v=') || !this.expectedServerSignature) throw upstreamAuthError(`server refused: ${text.slice(0, 100)}`);
    const sig = decodeBase64Strict(text.slice(2).split(',')[0]!, 'server signature');
    if (!constantTimeEqual(sig, this.expectedServerSignature)) throw upstreamAuthError('server signature does not verify');
  }
}
