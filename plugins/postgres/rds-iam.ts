/**
 * RDS IAM authentication tokens: a SigV4 presigned `GET https://host:port/?Action=connect&DBUser=user`
 * for service `rds-db`, valid 900 s, written without its scheme. This is what the AWS SDKs'
 * RDS signer produces; RDS checks it when it arrives as the cleartext password over TLS.
 */
import { HttpRequest } from '@smithy/protocol-http';
import type { AwsContext } from '../../core/plugin.ts';

export const RDS_TOKEN_TTL_SECONDS = 900;

/** RFC 3986 percent-encoding, as SigV4 canonicalizes query values. */
function escape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export async function rdsIamToken(
  aws: Pick<AwsContext, 'presign' | 'credentials'>,
  input: { resource: string; host: string; port: number; user: string; region: string; signingDate?: Date },
): Promise<string> {
  const credentials = await aws.credentials({ resource: input.resource });
  const hostPort = `${input.host}:${input.port}`;
  const request = new HttpRequest({
    method: 'GET',
    protocol: 'https:',
    hostname: input.host,
    port: input.port,
    path: '/',
    query: { Action: 'connect', DBUser: input.user },
    headers: { host: hostPort },
  });
  const presigned = await aws.presign(request, {
    service: 'rds-db',
    region: input.region,
    credentials,
    expiresIn: RDS_TOKEN_TTL_SECONDS,
    ...(input.signingDate ? { signingDate: input.signingDate } : {}),
  });
  const query = Object.entries(presigned.query)
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x] as const) : v == null ? [] : [[k, v] as const]))
    .map(([k, v]) => `${escape(k)}=${escape(v)}`)
    .join('&');
  return `${hostPort}/?${query}`;
}
