/** Grants and helpers for the store tests. */
import { randomBytes } from 'node:crypto';
import { newGrantId } from '../../core/grants/credentials.ts';
import type { StoreChange, StoredGrant } from '../../core/store/types.ts';

export function makeGrant(overrides: Partial<StoredGrant> & { status?: StoredGrant['status'] } = {}): StoredGrant {
  const now = Date.now();
  const status = overrides.status ?? 'active';
  const ttlMs = overrides.ttlMs ?? 3_600_000;
  return {
    id: newGrantId(),
    agent: 'local:bot',
    resource: 'reporting',
    resourceType: 'postgres',
    access: 'read',
    scope: { tables: ['public.orders'] },
    task: 'store test',
    status,
    createdAt: new Date(now).toISOString(),
    approvedAt: null,
    approvedBy: null,
    expiresAt: status === 'active' ? new Date(now + ttlMs).toISOString() : null,
    pendingUntil: status === 'pending' ? new Date(now + 86_400_000).toISOString() : null,
    ttlMs,
    revokedAt: null,
    revokedBy: null,
    policy: 0,
    verifiers: { sha256: randomBytes(32).toString('base64') },
    ...overrides,
  };
}

/** Poll `check` until it returns a value; fail naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Collects a store's change feed. */
export class ChangeLog {
  readonly changes: StoreChange[] = [];
  readonly onChange = (c: StoreChange): void => {
    this.changes.push(c);
  };

  grantChanges(id: string): Extract<StoreChange, { kind: 'grant' }>[] {
    return this.changes.filter((c): c is Extract<StoreChange, { kind: 'grant' }> => c.kind === 'grant' && c.grant.id === id);
  }

  revisions(): number[] {
    return this.changes.map((c) => c.revision);
  }
}
