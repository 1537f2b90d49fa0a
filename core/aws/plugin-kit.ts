/**
 * Pieces every AWS-API plugin (dynamodb, ssm, and the next one) would otherwise write
 * again: config fields of an AWS resource, scope narrowing of a named list, and the
 * `connect` block an AWS SDK or CLI reads.
 */
import { z } from 'zod';
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { ConnectInfo, Grant } from '../plugin.ts';

export const awsRegionSchema = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region such as us-east-1');
/** Assumed per grant (RoleSessionName = grant id); else airlock's own credentials are used. */
export const roleArnSchema = z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, 'an IAM role ARN');
export const accountIdSchema = z.string().regex(/^\d{12}$/, 'a 12-digit account id');

/**
 * Narrow a resource's list (tables, instances) by a grant request's `scope[key]`: a list or
 * a comma/space separated string, each entry valid and inside `allowed`. Absent → `allowed`.
 */
export function narrowList(
  requested: Record<string, unknown> | undefined,
  key: string,
  allowed: readonly string[],
  opts: { what: string; valid: (entry: string) => boolean; resourceType: string },
): string[] {
  for (const k of Object.keys(requested ?? {})) {
    if (k !== key) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown scope key '${k}' (${opts.resourceType} scopes take: ${key})`);
  }
  const asked = requested?.[key];
  if (asked === undefined) return [...allowed];
  const list = typeof asked === 'string' ? asked.split(/[,\s]+/).filter(Boolean) : asked;
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string' && opts.valid(t))) {
    throw new AirlockError(ErrorCodes.BAD_REQUEST, `scope.${key} must be a non-empty list of ${opts.what}s`);
  }
  const outside = list.filter((t) => !allowed.includes(t as string));
  if (outside.length > 0) throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `${opts.what} ${outside.join(', ')} is not part of this resource`);
  return [...new Set(list as string[])];
}

/** What an AWS SDK or CLI needs: the grant as its access key, airlock as its endpoint. */
export function awsConnectInfo(input: { endpoint: string; region: string; grant: Grant; secret: string; endpointEnv: string }): ConnectInfo {
  return {
    endpoint: input.endpoint,
    region: input.region,
    env: {
      AWS_ACCESS_KEY_ID: input.grant.id,
      AWS_SECRET_ACCESS_KEY: input.secret,
      AWS_REGION: input.region,
      AWS_DEFAULT_REGION: input.region,
      [input.endpointEnv]: input.endpoint,
    },
  };
}
