/**
 * airlock's own AWS credentials: the standard provider chain (env, web identity, container,
 * instance), and per-grant role sessions for resources that name a `roleArn`.
 *
 * A role session is assumed once per grant (RoleSessionName = grant id, SourceIdentity =
 * agent, a session policy narrowed to the grant's scope, a duration that ends with the grant
 * where STS allows it) and cached until shortly before it expires, so a grant's requests
 * reuse one session instead of calling STS per request. Concurrent first requests share the
 * same pending AssumeRole.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { Logger } from 'pino';
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { AwsCredentialRequest, Grant } from '../plugin.ts';

/** STS refuses role sessions shorter than 15 minutes. */
const MIN_SESSION_SECONDS = 900;
/** The default maximum session duration of an IAM role; longer grants re-assume. */
const MAX_SESSION_SECONDS = 3600;
/** Re-assume this long before a cached role session expires. */
const REFRESH_MARGIN_MS = 2 * 60 * 1000;
/** How often cached sessions of finished grants are dropped. */
const SWEEP_INTERVAL_MS = 60 * 1000;

export interface RoleBinding {
  roleArn?: string | undefined;
  region?: string | undefined;
}

/** IAM role session names and source identities allow `[\w+=,.@-]`, 2 to 64 characters. */
export function sanitizeIamName(value: string): string {
  const cleaned = value.replace(/[^\w+=,.@-]/g, '_').slice(0, 64);
  return cleaned.length >= 2 ? cleaned : cleaned.padEnd(2, '_');
}

/**
 * Seconds for a role session serving `grant`: until the grant ends (plus a minute of slack
 * for requests signed just before expiry), at least STS's 15-minute floor, at most an hour.
 */
export function sessionSecondsFor(grant: Grant<unknown>, now: number): number {
  if (grant.expiresAt === null) return MIN_SESSION_SECONDS;
  const remaining = Math.ceil((Date.parse(grant.expiresAt) - now) / 1000) + 60;
  return Math.min(MAX_SESSION_SECONDS, Math.max(MIN_SESSION_SECONDS, remaining));
}

interface CachedSession {
  credentials: Promise<AwsCredentialIdentity>;
  /** Epoch ms after which a fresh session is needed (set once the session arrives). */
  refreshAt: number;
  grantEndsAt: number;
}

export interface CredentialSourceOptions {
  region: string;
  roles: ReadonlyMap<string, RoleBinding>;
  stsEndpoint: (region: string) => string;
  log: Logger;
  /** Overrides the provider chain (tests, embedded dev). */
  baseCredentials?: AwsCredentialIdentityProvider | undefined;
  now?: (() => number) | undefined;
}

export class CredentialSource {
  /** Memoized by the SDK: refreshes itself before expiry. */
  readonly base: AwsCredentialIdentityProvider;
  private readonly sessions = new Map<string, CachedSession>();
  private readonly stsClients = new Map<string, STSClient>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly now: () => number;
  /** Number of AssumeRole calls made, for metrics and tests. */
  assumeRoleCalls = 0;

  constructor(private readonly options: CredentialSourceOptions) {
    this.base = options.baseCredentials ?? fromNodeProviderChain();
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  async forRequest(request: AwsCredentialRequest): Promise<AwsCredentialIdentity> {
    const binding = this.options.roles.get(request.resource);
    if (binding?.roleArn === undefined) return this.baseCredentials();
    if (request.grant === undefined) {
      throw new AirlockError(ErrorCodes.INTERNAL, `resource ${request.resource} assumes a role per grant, but no grant was given`);
    }
    return this.roleSession(binding.roleArn, binding.region ?? this.options.region, request.grant, request.sessionPolicy);
  }

  async baseCredentials(): Promise<AwsCredentialIdentity> {
    try {
      return await this.base();
    } catch (e) {
      throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, 'airlock has no AWS credentials (provider chain found none)', { cause: e });
    }
  }

  private roleSession(
    roleArn: string,
    region: string,
    grant: Grant<unknown>,
    sessionPolicy: Record<string, unknown> | undefined,
  ): Promise<AwsCredentialIdentity> {
    const key = `${grant.id}\0${roleArn}`;
    const now = this.now();
    const cached = this.sessions.get(key);
    if (cached !== undefined && now < cached.refreshAt) return cached.credentials;

    const grantEndsAt = grant.expiresAt === null ? now : Date.parse(grant.expiresAt);
    const entry: CachedSession = { credentials: Promise.resolve({} as AwsCredentialIdentity), refreshAt: Number.POSITIVE_INFINITY, grantEndsAt };
    entry.credentials = this.assume(roleArn, region, grant, sessionPolicy).then(
      (credentials) => {
        const expiresAt = credentials.expiration?.getTime() ?? this.now() + MIN_SESSION_SECONDS * 1000;
        entry.refreshAt = expiresAt - REFRESH_MARGIN_MS;
        return credentials;
      },
      (e: unknown) => {
        // A failed AssumeRole is not cached: the next request tries again.
        if (this.sessions.get(key) === entry) this.sessions.delete(key);
        throw e;
      },
    );
    this.sessions.set(key, entry);
    return entry.credentials;
  }

  private async assume(
    roleArn: string,
    region: string,
    grant: Grant<unknown>,
    sessionPolicy: Record<string, unknown> | undefined,
  ): Promise<AwsCredentialIdentity> {
    this.assumeRoleCalls++;
    const client = this.stsClient(region);
    const policy = sessionPolicy === undefined ? undefined : JSON.stringify(sessionPolicy);
    try {
      const out = await client.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: sanitizeIamName(grant.id),
          SourceIdentity: sanitizeIamName(grant.agent),
          DurationSeconds: sessionSecondsFor(grant, this.now()),
          ...(policy === undefined ? {} : { Policy: policy }),
        }),
      );
      const c = out.Credentials;
      if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined) {
        throw new Error('AssumeRole returned no credentials');
      }
      this.options.log.debug({ grant: grant.id, roleArn, expiration: c.Expiration }, 'assumed role for grant');
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        ...(c.SessionToken === undefined ? {} : { sessionToken: c.SessionToken }),
        ...(c.Expiration === undefined ? {} : { expiration: c.Expiration }),
      };
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      this.options.log.warn({ grant: grant.id, roleArn, err: reason }, 'AssumeRole failed');
      throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `airlock could not assume its role for this resource: ${reason}`, { cause: e });
    }
  }

  private stsClient(region: string): STSClient {
    let client = this.stsClients.get(region);
    if (client === undefined) {
      client = new STSClient({
        region,
        endpoint: this.options.stsEndpoint(region),
        credentials: this.base,
        maxAttempts: 3,
      });
      this.stsClients.set(region, client);
    }
    return client;
  }

  /** Drop the sessions of grants that have ended: no request of theirs is accepted any more. */
  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.sessions) {
      // A minute of slack: requests signed just before expiry may still be in flight.
      if (now > entry.grantEndsAt + 60_000) this.sessions.delete(key);
    }
  }

  /** Forget a grant's cached sessions (revocation): later requests are refused anyway. */
  forgetGrant(grantId: string): void {
    for (const key of this.sessions.keys()) if (key.startsWith(`${grantId}\0`)) this.sessions.delete(key);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const client of this.stsClients.values()) client.destroy();
    this.stsClients.clear();
    this.sessions.clear();
  }
}
