/**
 * Console sign-in sessions, held server-side: the browser holds only a random id in an
 * HttpOnly cookie. Keys are SHA-256 digests of the id, so the map never holds a usable
 * id. A session ends at sign-out, after IDLE_MS without a request, or at its absolute
 * end (ABSOLUTE_MS, or the pasted token's own expiry if sooner).
 */
import { createHash, randomBytes } from 'node:crypto';

export const IDLE_MS = 30 * 60_000;
export const ABSOLUTE_MS = 8 * 3_600_000;
const MAX_SESSIONS = 10_000;

export interface ConsoleSession {
  readonly agent: string;
  readonly admin: boolean;
  /** Carried by every form of this session. */
  readonly csrf: string;
  readonly method: 'token' | 'oidc';
  readonly createdAt: number;
  readonly endsAt: number;
  lastSeen: number;
}

export class ConsoleSessions {
  private readonly byDigest = new Map<string, ConsoleSession>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly idleMs = IDLE_MS,
  ) {}

  /** Returns the new session's id (for the cookie) and the session. */
  create(who: { agent: string; admin: boolean; method: ConsoleSession['method']; notAfter?: number | undefined }): { id: string; session: ConsoleSession } {
    this.sweep();
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const session: ConsoleSession = {
      agent: who.agent,
      admin: who.admin,
      method: who.method,
      csrf: randomBytes(24).toString('base64url'),
      createdAt: now,
      endsAt: Math.min(now + ABSOLUTE_MS, who.notAfter ?? Infinity),
      lastSeen: now,
    };
    this.byDigest.set(digest(id), session);
    return { id, session };
  }

  /** The live session for a cookie value (touching it), or undefined. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (!id || id.length > 128) return undefined;
    const key = digest(id);
    const s = this.byDigest.get(key);
    if (!s) return undefined;
    const now = this.now();
    if (now >= s.endsAt || now - s.lastSeen >= this.idleMs) {
      this.byDigest.delete(key);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  end(id: string | undefined): void {
    if (id) this.byDigest.delete(digest(id));
  }

  get size(): number {
    return this.byDigest.size;
  }

  private sweep(): void {
    if (this.byDigest.size < MAX_SESSIONS) return;
    const now = this.now();
    for (const [k, s] of this.byDigest) if (now >= s.endsAt || now - s.lastSeen >= this.idleMs) this.byDigest.delete(k);
    // Still full: drop the oldest rather than refuse every new sign-in.
    for (const k of this.byDigest.keys()) {
      if (this.byDigest.size < MAX_SESSIONS) break;
      this.byDigest.delete(k);
    }
  }
}

function digest(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}
