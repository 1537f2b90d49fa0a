/**
 * A GrantAuthenticator over grants whose secrets the test knows, deriving SigV4 keys the
 * way the grant store does (kDate per UTC date). For unit tests of the AWS layer only; the
 * end-to-end tests use the real gateway and its grant store.
 */
import { createHmac } from 'node:crypto';
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { Grant, GrantAuthenticator, GrantStatus } from '../../core/plugin.ts';

export interface FakeGrant {
  grant: Grant;
  secret: string;
}

export function makeGrant(over: Partial<Grant> & { id: string }): Grant {
  return {
    agent: 'local:test-bot',
    resource: 'orders',
    resourceType: 'dynamodb',
    access: 'read',
    scope: {},
    task: 'unit test',
    status: 'active',
    createdAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
    ttlMs: 600_000,
    ...over,
  };
}

/** A grant whose scope has the plugin's own type (authorizer unit tests). */
export function makeScopedGrant<S>(over: Partial<Omit<Grant<S>, 'scope'>> & { id: string; scope: S }): Grant<S> {
  return { ...makeGrant({ ...over, scope: {} }), scope: over.scope };
}

export class FakeGrants implements GrantAuthenticator {
  readonly grants = new Map<string, FakeGrant>();

  constructor(private readonly resourceType: string) {}

  add(grant: Grant, secret: string): void {
    this.grants.set(grant.id, { grant, secret });
  }

  setStatus(id: string, status: GrantStatus): void {
    const entry = this.grants.get(id);
    if (entry) entry.grant = { ...entry.grant, status };
  }

  private lookup(id: string): FakeGrant {
    const entry = this.grants.get(id);
    if (!entry) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'unknown grant credential');
    if (entry.grant.resourceType !== this.resourceType) throw new AirlockError(ErrorCodes.WRONG_RESOURCE, 'grant is for another resource type');
    return entry;
  }

  listActive(): Grant[] {
    return [...this.grants.values()].map((g) => g.grant).filter((g) => g.status === 'active' && g.resourceType === this.resourceType);
  }

  scram(): never {
    throw new Error('not used');
  }
  decoyScram(): never {
    throw new Error('not used');
  }
  bearer(): never {
    throw new Error('not used');
  }

  sigv4SigningKey(grantId: string, date: string, region: string, service: string): { grant: Grant; key: Buffer } {
    const entry = this.lookup(grantId);
    const kDate = createHmac('sha256', `AWS4${entry.secret}`).update(date).digest();
    const kRegion = createHmac('sha256', kDate).update(region).digest();
    const kService = createHmac('sha256', kRegion).update(service).digest();
    return { grant: entry.grant, key: createHmac('sha256', kService).update('aws4_request').digest() };
  }

  requireActive(grantId: string): Grant {
    const { grant } = this.lookup(grantId);
    const codes: Record<GrantStatus, keyof typeof ErrorCodes | undefined> = {
      active: undefined,
      pending: 'GRANT_PENDING',
      expired: 'GRANT_EXPIRED',
      revoked: 'GRANT_REVOKED',
      denied: 'GRANT_DENIED',
    };
    const code = codes[grant.status];
    if (code) throw new AirlockError(ErrorCodes[code], `grant ${grant.status}`);
    return grant;
  }

  get(grantId: string): Grant | undefined {
    return this.grants.get(grantId)?.grant;
  }
}
