/**
 * Which failures mean "the store cannot be reached" (fail closed with STORE_UNAVAILABLE)
 * as opposed to a bug or a constraint violation (thrown as they are).
 */
import { AirlockError, ErrorCodes } from '../../errors.ts';

/** postgres.js connection error codes and socket errnos. */
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
]);

/** SQLSTATEs of a server that is going away, starting, or full. */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}

export function isConnectionFailure(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as Error & { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  return CONNECTION_CODES.has(code) || isUnavailableSqlState(code);
}

/** A short reason for humans and /healthz: the code and message, never the URL's password. */
export function describeFailure(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as Error & { code?: unknown }).code;
  const message = e.message.replace(/postgres(ql)?:\/\/[^@\s]*@/gi, 'postgres://***@');
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

export function unavailable(where: string, e: unknown): AirlockError {
  return new AirlockError(ErrorCodes.STORE_UNAVAILABLE, `airlock cannot reach its store (PostgreSQL at ${where}): ${describeFailure(e)}`, { cause: e });
}

/** host:port/database of a connection URL, for messages (no user, no password). */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname || '/'}`;
  } catch {
    return '(unparsable store URL)';
  }
}
