/**
 * A SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`)
 * computed here, as libpq's PQencryptPasswordConn does, so CREATE ROLE … PASSWORD carries the
 * verifier and the role's password never reaches the server's statement log.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

const ITERATIONS = 4096;

export function scramVerifier(password: string): string {
  const salt = randomBytes(16);
  // Passwords here are ASCII (base64url), for which SASLprep is the identity.
  const salted = pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** 256 bits, URL-safe: the role's password, held in airlock's memory and the shared store (for the other replicas). */
export function newRolePassword(): string {
  return randomBytes(32).toString('base64url');
}
