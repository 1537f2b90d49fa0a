/**
 * Which sessions are live, kept on disk, so that a gateway killed outright (kill -9, power
 * loss) can still close them in the audit on its next start: every `session.opened` has a
 * `session.closed`, with reason `crash` when the gateway never got to write one.
 *
 * The file exists only while the gateway runs (a clean stop removes it), so finding it at
 * start also says the previous run did not stop cleanly. One short line per session open
 * and close, appended synchronously: sessions open far less often than statements run.
 */
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LeftOpen {
  readonly session: string;
  readonly grant: string | undefined;
}

export interface LedgerRecovery {
  /** The previous run ended without a clean stop. */
  readonly unclean: boolean;
  /** Sessions it opened and never closed. */
  readonly leftOpen: readonly LeftOpen[];
}

const FILE = 'sessions.live';
const SESSION_ID = /^s_[A-Za-z0-9_-]{1,64}$/;
const GRANT_ID = /^AG[A-Z2-7]{18}$/;

export class SessionLedger {
  private readonly path: string;
  private open = false;

  constructor(dataDir: string) {
    this.path = join(dataDir, FILE);
  }

  /** What the previous run left behind; call before `start`. */
  recover(): LedgerRecovery {
    if (!existsSync(this.path)) return { unclean: false, leftOpen: [] };
    const live = new Map<string, string | undefined>();
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      const [mark, session, grant] = line.split(' ');
      if (session === undefined || !SESSION_ID.test(session)) continue; // a torn last line
      if (mark === '+') live.set(session, grant !== undefined && GRANT_ID.test(grant) ? grant : undefined);
      else if (mark === '-') live.delete(session);
    }
    return { unclean: true, leftOpen: [...live].map(([session, grant]) => ({ session, grant })) };
  }

  /** Begin this run's ledger (empty). */
  start(): void {
    writeFileSync(this.path, '', { mode: 0o600 });
    this.open = true;
  }

  opened(session: string, grant: string | undefined): void {
    if (this.open) appendFileSync(this.path, `+ ${session} ${grant ?? '-'}\n`);
  }

  closed(session: string): void {
    if (this.open) appendFileSync(this.path, `- ${session}\n`);
  }

  /** A clean stop: every session was closed in the audit; nothing is left to recover. */
  stop(): void {
    this.open = false;
    rmSync(this.path, { force: true });
  }
}
