/**
 * EKS bearer tokens made from airlock's own AWS identity, as aws-iam-authenticator and
 * `aws eks get-token` make them: `k8s-aws-v1.` + base64url (no padding) of an STS
 * GetCallerIdentity URL presigned with the cluster name in the signed `x-k8s-aws-id`
 * header. The cluster's authenticator replays that URL to STS and accepts it for 15
 * minutes after X-Amz-Date, so a token is reused for 10 minutes and then replaced.
 */
import { HttpRequest } from '@smithy/protocol-http';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { AwsContext } from '../../core/plugin.ts';

export const TOKEN_PREFIX = 'k8s-aws-v1.';
/** STS ignores X-Amz-Expires for this (validity is 15 min from X-Amz-Date); 60 is what every client sends. */
const PRESIGN_EXPIRES_SECONDS = 60;
/** Refresh well before the 15-minute life ends, leaving room for clock skew and slow requests. */
export const TOKEN_REUSE_MS = 10 * 60_000;

/** The STS host an EKS cluster's authenticator accepts: the public regional endpoint. */
export function stsHostFor(region: string): string {
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `sts.${region}.${suffix}`;
}

/** RFC 3986 encoding, as SigV4 canonical queries use (so the URL decodes to what was signed). */
const rfc3986 = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export async function makeEksToken(
  aws: Pick<AwsContext, 'presign'>,
  input: { cluster: string; region: string; credentials: AwsCredentialIdentity; signingDate?: Date },
): Promise<string> {
  const hostname = stsHostFor(input.region);
  const request = new HttpRequest({
    method: 'GET',
    protocol: 'https:',
    hostname,
    path: '/',
    query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    headers: { host: hostname, 'x-k8s-aws-id': input.cluster },
  });
  const signed = await aws.presign(request, {
    service: 'sts',
    region: input.region,
    credentials: input.credentials,
    expiresIn: PRESIGN_EXPIRES_SECONDS,
    ...(input.signingDate ? { signingDate: input.signingDate } : {}),
  });
  const query = Object.entries(signed.query)
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x] as const) : v === null ? [] : [[k, v] as const]))
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(String(v))}`)
    .join('&');
  const url = `https://${hostname}/?${query}`;
  return TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
}

/**
 * One token per (cluster, region, AWS identity), reused for TOKEN_REUSE_MS. Concurrent
 * requests share one in-flight signing. `now` is injectable so tests can age a token.
 */
export class EksTokenCache {
  private readonly tokens = new Map<string, { token: string; madeAt: number }>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly aws: Pick<AwsContext, 'presign'>,
    private readonly now: () => number = Date.now,
  ) {}

  async token(cluster: string, region: string, credentials: AwsCredentialIdentity): Promise<string> {
    const key = `${cluster}\u0000${region}\u0000${credentials.accessKeyId}`;
    const cached = this.tokens.get(key);
    if (cached && this.now() - cached.madeAt < TOKEN_REUSE_MS && !expiresSoon(credentials, this.now())) return cached.token;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const madeAt = this.now();
    const p = makeEksToken(this.aws, { cluster, region, credentials, signingDate: new Date(madeAt) })
      .then((token) => {
        // Drop tokens of rotated credentials so the map stays as small as the live identities.
        for (const [k, v] of this.tokens) if (madeAt - v.madeAt >= TOKEN_REUSE_MS) this.tokens.delete(k);
        this.tokens.set(key, { token, madeAt });
        return token;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  clear(): void {
    this.tokens.clear();
  }
}

/** Temporary credentials ending within the token's reuse window: sign afresh each time. */
function expiresSoon(credentials: AwsCredentialIdentity, now: number): boolean {
  return credentials.expiration !== undefined && credentials.expiration.getTime() - now < TOKEN_REUSE_MS;
}
