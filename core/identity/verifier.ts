/**
 * Turns a bearer JWT into an agent identity `issuer-name:subject`. The issuer is chosen by
 * the token's `iss` claim, then the token is verified against that issuer's keys with its
 * audience, an algorithm allow-list (never `none`), required `exp` and a small clock skew.
 */
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { IssuerConfig } from '../config/schema.ts';
import { parseDuration } from '../config/duration.ts';
import type { GatewayIdentity } from './gateway-key.ts';
import { LOCAL_AUDIENCE, localIssuerUrl } from './local-issuer.ts';

export interface Identity {
  /** `issuer-name:subject`. */
  readonly agent: string;
  readonly admin: boolean;
}

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

interface ResolvedIssuer {
  name: string;
  iss: string;
  audience: string | string[];
  algorithms: string[];
  clockTolerance: number;
  keys: JWTVerifyGetKey;
}

const CACHE_MS = 5 * 60_000;
const CACHE_MAX = 10_000;

const DEFAULT_ALGORITHMS = ['EdDSA', 'ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

export class IdentityVerifier {
  private readonly issuers: ResolvedIssuer[];
  private readonly admins: readonly string[];

  constructor(issuers: IssuerConfig[], admins: readonly string[], gateway: GatewayIdentity) {
    this.admins = admins;
    this.issuers = issuers.map((c): ResolvedIssuer => {
      if (c.type === 'local') {
        return {
          name: c.name,
          iss: localIssuerUrl(gateway.gatewayId),
          audience: LOCAL_AUDIENCE,
          algorithms: ['EdDSA'],
          clockTolerance: 30,
          keys: createLocalJWKSet({ keys: [gateway.key.publicJwk] }),
        };
      }
      return {
        name: c.name,
        iss: c.issuer,
        audience: c.audience,
        algorithms: (c.algorithms ?? DEFAULT_ALGORITHMS).filter((a) => a.toLowerCase() !== 'none'),
        clockTolerance: Math.floor((parseDuration(c.clockTolerance) ?? 30_000) / 1000),
        keys: createRemoteJWKSet(new URL(c.jwksUri), { cooldownDuration: 30_000, timeoutDuration: 5_000 }),
      };
    });
  }

  /** Verified tokens, until their expiry (at most CACHE_MS): an agent reuses its token for every call. */
  private readonly cache = new Map<string, { identity: Identity; until: number }>();

  async verify(token: string): Promise<Identity> {
    const hit = this.cache.get(token);
    if (hit && hit.until > Date.now()) return hit.identity;
    if (hit) this.cache.delete(token);
    const { identity, exp } = await this.verifyUncached(token);
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(token, { identity, until: Math.min(exp * 1000, Date.now() + CACHE_MS) });
    return identity;
  }

  private async verifyUncached(token: string): Promise<{ identity: Identity; exp: number }> {
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new IdentityError('malformed token');
    }
    const issuer = this.issuers.find((i) => i.iss === iss);
    if (!issuer) throw new IdentityError('token issuer is not trusted');
    try {
      const { payload } = await jwtVerify(token, issuer.keys, {
        issuer: issuer.iss,
        audience: issuer.audience,
        algorithms: issuer.algorithms,
        clockTolerance: issuer.clockTolerance,
        requiredClaims: ['exp', 'sub'],
      });
      const agent = `${issuer.name}:${payload.sub}`;
      return { identity: { agent, admin: this.admins.includes(agent) }, exp: payload.exp! };
    } catch (e) {
      throw new IdentityError(`token rejected (${describeJoseError(e)})`);
    }
  }
}

/** A short, safe reason (no token content) for a jose verification failure. */
function describeJoseError(e: unknown): string {
  const err = e as { code?: string; claim?: string };
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `${err.claim ?? 'a'} claim invalid`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature verification failed';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm not allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no matching key';
    default:
      return (err.code ?? 'ERR_JWT_INVALID').replace(/^ERR_/, '').toLowerCase();
  }
}
